//! Training-data augmentation for image tasks: random translations and dropped pixels.
//!
//! A temporally encoded image stores one event time per pixel, so moving the image
//! moves its event times; pixels that come in from outside the frame are background,
//! which in the temporal code is the last step (a pixel value of 0). A dropped pixel
//! becomes background too. Each epoch draws new shifts and drops from its own seed, so
//! a resumed run sees the same data.

use super::{Dataset, Source};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The event times of a `rows` x `cols` image moved `down` rows and `right` columns
/// (negative: up, left); pixels moved in from outside the frame get `background`.
pub fn translate(
    times: &[u8],
    (rows, cols): (usize, usize),
    (down, right): (isize, isize),
    background: u8,
) -> Vec<u8> {
    debug_assert_eq!(times.len(), rows * cols);
    let mut moved = vec![background; rows * cols];
    for r in 0..rows {
        let Some(from_r) = r.checked_add_signed(-down).filter(|&f| f < rows) else {
            continue;
        };
        for c in 0..cols {
            if let Some(from_c) = c.checked_add_signed(-right).filter(|&f| f < cols) {
                moved[r * cols + c] = times[from_r * cols + from_c];
            }
        }
    }
    moved
}

impl Dataset {
    /// A copy with every image moved by its own random shift, up to `max_shift` pixels
    /// in each direction (uniform over the (2 * max_shift + 1)^2 offsets). Only for
    /// temporally encoded images (MNIST).
    pub fn randomly_shifted(&self, max_shift: usize, rng: &mut Rng) -> Result<Dataset> {
        let (Some((rows, cols)), Source::EventTimes(times)) = (self.image_size, &self.source)
        else {
            return Err(Error::InvalidConfig(
                "random shifts apply to temporally encoded images only (--task mnist)".into(),
            ));
        };
        if max_shift >= rows.min(cols) {
            return Err(Error::InvalidConfig(format!(
                "a shift of up to {max_shift} pixels leaves nothing of a {rows} x {cols} image"
            )));
        }
        let background = (self.steps - 1) as u8;
        let span = 2 * max_shift + 1;
        let mut offset = || rng.below(span) as isize - max_shift as isize;
        let shifted = times
            .chunks(rows * cols)
            .flat_map(|image| translate(image, (rows, cols), (offset(), offset()), background))
            .collect();
        Ok(self.with_event_times(shifted))
    }

    /// A copy in which every pixel that is not background becomes background (value 0,
    /// the last step) with probability `rate`, independently: pixel dropout without
    /// rescaling, since an event is either there or not. Only for temporally encoded
    /// images (MNIST).
    pub fn with_pixels_dropped(&self, rate: f64, rng: &mut Rng) -> Result<Dataset> {
        let (Some(_), Source::EventTimes(times)) = (self.image_size, &self.source) else {
            return Err(Error::InvalidConfig(
                "pixel drops apply to temporally encoded images only (--task mnist)".into(),
            ));
        };
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::InvalidConfig(format!(
                "a pixel drop rate must be in [0, 1), not {rate}"
            )));
        }
        let background = (self.steps - 1) as u8;
        let dropped = times
            .iter()
            .map(|&t| {
                if t != background && rng.uniform() < rate {
                    background
                } else {
                    t
                }
            })
            .collect();
        Ok(self.with_event_times(dropped))
    }

    /// The same images (labels, sizes) with other event times, and no pixel bytes:
    /// these times were not encoded from them.
    fn with_event_times(&self, times: Vec<u8>) -> Dataset {
        Dataset {
            labels: self.labels.clone(),
            source: Source::EventTimes(times),
            pixels: None,
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_moves_pixels_and_fills_with_background() {
        // A 2 x 3 image: rows [0 1 2], [3 4 5].
        let image = [0, 1, 2, 3, 4, 5];
        assert_eq!(translate(&image, (2, 3), (0, 0), 9), image);
        assert_eq!(translate(&image, (2, 3), (0, 1), 9), [9, 0, 1, 9, 3, 4]);
        assert_eq!(translate(&image, (2, 3), (0, -2), 9), [2, 9, 9, 5, 9, 9]);
        assert_eq!(translate(&image, (2, 3), (1, 0), 9), [9, 9, 9, 0, 1, 2]);
        assert_eq!(translate(&image, (2, 3), (-1, 1), 9), [9, 3, 4, 9, 9, 9]);
        assert_eq!(translate(&image, (2, 3), (2, 0), 9), [9; 6]);
    }

    fn images(n: usize) -> Dataset {
        // n images of 5 x 5, each with one bright pixel (step 0) in the middle.
        let mut times = vec![3u8; n * 25];
        for i in 0..n {
            times[i * 25 + 12] = 0;
        }
        Dataset::from_event_times(times, (0..n as u32).collect(), 4, 25, 1000).with_image_size(5, 5)
    }

    #[test]
    fn random_shifts_cover_every_offset_and_keep_labels() {
        let data = images(400);
        let shifted = data.randomly_shifted(1, &mut Rng::new(7)).unwrap();
        assert_eq!(shifted.labels, data.labels);
        assert_eq!(
            (shifted.steps, shifted.input, shifted.image_size),
            (4, 25, Some((5, 5)))
        );
        let mut seen = [0usize; 25];
        for n in 0..shifted.len() {
            let seq = shifted.sequence(n);
            let bright: Vec<usize> = (0..25).filter(|&i| seq[i] == 1.0).collect();
            assert_eq!(bright.len(), 1, "the one bright pixel stays in the frame");
            let (r, c) = (bright[0] / 5, bright[0] % 5);
            assert!(
                (1..=3).contains(&r) && (1..=3).contains(&c),
                "moved at most 1"
            );
            seen[bright[0]] += 1;
        }
        // All 9 offsets occur, each about 400 / 9 = 44 times.
        let counts: Vec<usize> = seen.iter().copied().filter(|&k| k > 0).collect();
        assert_eq!(counts.len(), 9);
        assert!(counts.iter().all(|&k| (20..=70).contains(&k)), "{counts:?}");
        // The same seed gives the same shifts, another seed others.
        let again = data.randomly_shifted(1, &mut Rng::new(7)).unwrap();
        assert_eq!(again, shifted);
        assert_ne!(data.randomly_shifted(1, &mut Rng::new(8)).unwrap(), shifted);
    }

    #[test]
    fn dropped_pixels_become_background_at_the_rate_asked() {
        // 400 images of 5 x 5: the middle pixel at step 0, the rest background (3).
        let data = images(400);
        let dropped = data.with_pixels_dropped(0.25, &mut Rng::new(3)).unwrap();
        assert_eq!(dropped.labels, data.labels);
        assert_eq!((dropped.steps, dropped.image_size), (4, Some((5, 5))));
        let Source::EventTimes(times) = &dropped.source else {
            panic!("still event times")
        };
        // Only the bright pixels can go, and they go to the background step.
        assert!(times.iter().all(|&t| t == 0 || t == 3));
        let kept = times.iter().filter(|&&t| t == 0).count();
        // 300 expected of 400 (binomial sd 8.7).
        assert!((270..=330).contains(&kept), "{kept}");
        let again = data.with_pixels_dropped(0.25, &mut Rng::new(3)).unwrap();
        assert_eq!(again, dropped);
        assert_eq!(
            data.with_pixels_dropped(0.0, &mut Rng::new(3)).unwrap(),
            data
        );
    }

    #[test]
    fn pixel_drops_are_refused_where_they_make_no_sense() {
        for rate in [1.0, -0.1, f64::NAN] {
            let err = images(1)
                .with_pixels_dropped(rate, &mut Rng::new(1))
                .unwrap_err();
            assert!(err.to_string().contains("[0, 1)"), "{err}");
        }
        let not_images = Dataset::from_event_times(vec![0; 4], vec![0], 2, 4, 2);
        let err = not_images
            .with_pixels_dropped(0.1, &mut Rng::new(1))
            .unwrap_err();
        assert!(err.to_string().contains("mnist"), "{err}");
    }

    #[test]
    fn shifts_are_refused_where_they_make_no_sense() {
        let err = images(1).randomly_shifted(5, &mut Rng::new(1)).unwrap_err();
        assert!(err.to_string().contains("5 x 5"), "{err}");
        let not_images = Dataset::from_event_times(vec![0; 4], vec![0], 2, 4, 2);
        let err = not_images
            .randomly_shifted(1, &mut Rng::new(1))
            .unwrap_err();
        assert!(err.to_string().contains("mnist"), "{err}");
    }
}
