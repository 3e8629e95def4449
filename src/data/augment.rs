//! Training-data augmentation for image tasks: random rotations, scalings and elastic
//! distortions of the pixel bytes, random translations and dropped pixels.
//!
//! A temporally encoded image stores one event time per pixel, so moving the image
//! moves its event times; pixels that come in from outside the frame are background,
//! which in the temporal code is the last step (a pixel value of 0). A dropped pixel
//! becomes background too. Each epoch draws new shifts and drops from its own seed, so
//! a resumed run sees the same data.
//!
//! Rotations, scalings and elastic distortions move pixels by fractions of a pixel, so
//! they resample the pixel bytes the times were encoded from ([`Distortion`]), taking
//! each output pixel from the nearest source pixel (or, with [`Sampling::Bilinear`],
//! interpolating the four nearest and rounding back to a byte), and encode the result
//! anew. A run applies them first, then the shift, then the drop
//! (`run::epoch_training_data`).

use super::mnist::temporal_bin;
use super::{Dataset, Source};
use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// The widest Gaussian an elastic distortion may be smoothed with, in pixels: an
/// MNIST image's size. A wider one moves the image almost as a whole.
pub const MAX_ELASTIC_SIGMA: f64 = 28.0;

/// An elastic distortion (Simard, Steinkraus and Platt, 2003), `--augment-elastic
/// ALPHA:SIGMA`: each pixel draws two displacements (rows, columns) uniform in
/// [-1, 1]; each field of them is smoothed by a Gaussian of standard deviation `sigma`
/// pixels and multiplied by `alpha` pixels. Each output pixel then takes its value
/// from where its displacement points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Elastic {
    /// The scale of the displacements, in pixels.
    pub alpha: f64,
    /// The standard deviation of the smoothing, in pixels.
    pub sigma: f64,
}

impl Elastic {
    /// Parses `ALPHA:SIGMA`, e.g. `34:4`.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::InvalidConfig(format!(
                "--augment-elastic '{spec}': {why} (expected ALPHA:SIGMA, e.g. 34:4)"
            ))
        };
        let (alpha, sigma) = spec.split_once(':').ok_or_else(|| bad("no ':'"))?;
        let number = |part: &str, name: &str| {
            part.trim()
                .parse::<f64>()
                .map_err(|_| bad(&format!("{name} is not a number")))
        };
        let elastic = Elastic {
            alpha: number(alpha, "ALPHA")?,
            sigma: number(sigma, "SIGMA")?,
        };
        match elastic.problem() {
            Some(why) => Err(bad(&why)),
            None => Ok(elastic),
        }
    }

    /// Checks both values are above 0 and finite, and the smoothing no wider than
    /// [`MAX_ELASTIC_SIGMA`].
    pub fn validate(&self) -> Result<()> {
        match self.problem() {
            Some(why) => Err(Error::InvalidConfig(format!("--augment-elastic: {why}"))),
            None => Ok(()),
        }
    }

    /// What is wrong with these values, if anything.
    fn problem(&self) -> Option<String> {
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            Some(format!(
                "ALPHA must be above 0 pixels, not {} (leave the flag out for no elastic \
                 distortion)",
                self.alpha
            ))
        } else if !(self.sigma > 0.0 && self.sigma <= MAX_ELASTIC_SIGMA) {
            Some(format!(
                "SIGMA must be above 0 and at most {MAX_ELASTIC_SIGMA} pixels, not {}",
                self.sigma
            ))
        } else {
            None
        }
    }
}

/// How a distortion reads the source image at a fractional coordinate
/// (`--augment-sampling`).
///
/// The temporal code puts a pixel's event at step `(255 - v) * 20 / 255`, and a trained
/// model decides within a step or two, so only the brightest pixels (243 and above for
/// step 0) count for its decision. Interpolation averages a bright stroke's core with
/// its dimmer edge and lowers it below that: with rotations of 10 degrees, scalings of
/// 0.1 and an elastic distortion of 34:4, bilinear training images keep 35 step-0
/// pixels of the originals' 62 on average, while the test images keep them all. The
/// nearest pixel keeps every value as it was (62 of 62), so the distorted images keep
/// the originals' mix of event times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// The value of the source pixel nearest to the coordinate.
    #[default]
    Nearest,
    /// The four source pixels around the coordinate, interpolated bilinearly and
    /// rounded to a byte.
    Bilinear,
}

impl Sampling {
    /// Every sampling.
    pub const ALL: [Sampling; 2] = [Sampling::Nearest, Sampling::Bilinear];

    /// The name on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Sampling::Nearest => "nearest",
            Sampling::Bilinear => "bilinear",
        }
    }

    /// What the sampling does, in a line.
    pub fn about(self) -> &'static str {
        match self {
            Sampling::Nearest => {
                "Each pixel takes the value of the source pixel nearest to where it comes \
                 from: every value is one of the image's, so the bright pixels of the first \
                 time steps stay about as many as in the originals"
            }
            Sampling::Bilinear => {
                "Each pixel interpolates the four source pixels around where it comes from: \
                 smoother strokes, but dimmer peaks, so fewer pixels in the first time steps"
            }
        }
    }

    /// The value of a `rows` x `cols` image at row `y`, column `x` (fractional), those
    /// outside the frame 0 (background).
    fn sample(self, pixels: &[u8], size: (usize, usize), y: f64, x: f64) -> u8 {
        match self {
            Sampling::Nearest => nearest(pixels, size, y, x),
            Sampling::Bilinear => bilinear(pixels, size, y, x),
        }
    }
}

/// What resamples each training image every epoch: a rotation, a scaling and an
/// elastic distortion, each drawn anew for every image and each off where it is 0 or
/// none. The rotation and the scaling are about the image's centre; the elastic
/// distortion applies to the rotated and scaled image, and the image is sampled once,
/// by `sampling`, for all three ([`warp`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Distortion {
    /// The largest rotation either way, in degrees: each image's angle is uniform in
    /// [-max_degrees, max_degrees].
    pub max_degrees: f64,
    /// The largest relative change of size: each image's scale is uniform in
    /// [1 - max_scale, 1 + max_scale].
    pub max_scale: f64,
    /// The elastic distortion, if any.
    pub elastic: Option<Elastic>,
    /// How the source image is read where a pixel comes from between pixels.
    pub sampling: Sampling,
}

/// A Gaussian smoothing of a line of `n` values (a row or a column of an image), the
/// values outside the line taken as 0 (as scipy.ndimage.gaussian_filter with
/// mode="constant"): its weights, truncated at 4 standard deviations (scipy's default)
/// and summing to 1.
#[derive(Debug, Clone)]
struct Blur {
    /// `weights[d]`: the weight of a value `d` places away, for d up to the radius or
    /// the line's last value, whichever is nearer.
    weights: Vec<f64>,
}

impl Blur {
    fn new(n: usize, sigma: f64) -> Blur {
        let radius = (4.0 * sigma + 0.5) as usize;
        let weight = |d: usize| (-((d * d) as f64) / (2.0 * sigma * sigma)).exp();
        let total = weight(0) + 2.0 * (1..=radius).map(weight).sum::<f64>();
        Blur {
            weights: (0..=radius.min(n.saturating_sub(1)))
                .map(|d| weight(d) / total)
                .collect(),
        }
    }

    /// `field` (`rows` x `cols`, row by row) smoothed along its columns by `down` and
    /// along its rows by `across`, times `scale`.
    fn smooth(
        field: &[f64],
        (rows, cols): (usize, usize),
        down: &Blur,
        across: &Blur,
        scale: f64,
    ) -> Vec<f64> {
        // Down the columns: row r is the weighted sum of the rows near it.
        let mut half = vec![0.0; rows * cols];
        for r in 0..rows {
            let out = &mut half[r * cols..(r + 1) * cols];
            for k in r.saturating_sub(down.weights.len() - 1)..rows.min(r + down.weights.len()) {
                let w = down.weights[r.abs_diff(k)];
                for (o, &v) in out.iter_mut().zip(&field[k * cols..(k + 1) * cols]) {
                    *o += w * v;
                }
            }
        }
        // Along the rows: column c is the weighted sum of the columns near it.
        let mut smooth = vec![0.0; rows * cols];
        for r in 0..rows {
            let (row, out) = (
                &half[r * cols..(r + 1) * cols],
                &mut smooth[r * cols..(r + 1) * cols],
            );
            for (c, o) in out.iter_mut().enumerate() {
                let near =
                    c.saturating_sub(across.weights.len() - 1)..cols.min(c + across.weights.len());
                *o = scale
                    * near
                        .map(|k| across.weights[c.abs_diff(k)] * row[k])
                        .sum::<f64>();
            }
        }
        smooth
    }
}

/// The value of a `rows` x `cols` image at row `y`, column `x` (fractional): that of
/// the pixel nearest to it, 0 (background) outside the frame. Each pixel covers the
/// half-open square [r - 0.5, r + 0.5) x [c - 0.5, c + 0.5), so a coordinate halfway
/// between two pixels takes the lower or further right one. At whole coordinates it is
/// that pixel exactly.
fn nearest(pixels: &[u8], (rows, cols): (usize, usize), y: f64, x: f64) -> u8 {
    let (r, c) = ((y + 0.5).floor(), (x + 0.5).floor());
    if r >= 0.0 && c >= 0.0 && r < rows as f64 && c < cols as f64 {
        pixels[r as usize * cols + c as usize]
    } else {
        0
    }
}

/// The value of a `rows` x `cols` image at row `y`, column `x` (fractional), by
/// bilinear interpolation of its four nearest pixels, those outside the frame 0
/// (background), rounded to a byte. At whole coordinates it is that pixel exactly.
fn bilinear(pixels: &[u8], (rows, cols): (usize, usize), y: f64, x: f64) -> u8 {
    let (y0, x0) = (y.floor(), x.floor());
    let at = |r: f64, c: f64| {
        if r >= 0.0 && c >= 0.0 && r < rows as f64 && c < cols as f64 {
            pixels[r as usize * cols + c as usize] as f64
        } else {
            0.0
        }
    };
    let (fy, fx) = (y - y0, x - x0);
    if fy == 0.0 && fx == 0.0 {
        return at(y0, x0) as u8;
    }
    let top = (1.0 - fx) * at(y0, x0) + fx * at(y0, x0 + 1.0);
    let bottom = (1.0 - fx) * at(y0 + 1.0, x0) + fx * at(y0 + 1.0, x0 + 1.0);
    ((1.0 - fy) * top + fy * bottom).round().clamp(0.0, 255.0) as u8
}

/// The `rows` x `cols` image `pixels` rotated by `degrees` (counter-clockwise as an
/// image is shown, rows running down) and scaled by `scale` (above 1: larger) about
/// its centre, then displaced by `field`: output pixel i takes its value from
/// `field.0[i]` rows and `field.1[i]` columns away from itself in the rotated and
/// scaled image. One sampling of the original by `sampling` for all of it; pixels that
/// come from outside the frame are background (0). A rotation by 0, a scale of 1 and no
/// field (or a zero one) give the image back unchanged, byte for byte, either way.
pub fn warp(
    pixels: &[u8],
    (rows, cols): (usize, usize),
    degrees: f64,
    scale: f64,
    field: Option<(&[f64], &[f64])>,
    sampling: Sampling,
) -> Vec<u8> {
    debug_assert_eq!(pixels.len(), rows * cols);
    let (cy, cx) = ((rows as f64 - 1.0) / 2.0, (cols as f64 - 1.0) / 2.0);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            let i = r * cols + c;
            let (mut y, mut x) = (r as f64, c as f64);
            if let Some((down, right)) = field {
                y += down[i];
                x += right[i];
            }
            // The inverse of the rotation and scaling about the centre.
            let (v, u) = (y - cy, x - cx);
            let from_y = cy + (u * sin + v * cos) / scale;
            let from_x = cx + (u * cos - v * sin) / scale;
            out.push(sampling.sample(pixels, (rows, cols), from_y, from_x));
        }
    }
    out
}

impl Distortion {
    /// True when it changes nothing.
    pub fn is_identity(&self) -> bool {
        self.max_degrees == 0.0 && self.max_scale == 0.0 && self.elastic.is_none()
    }

    /// One image's draws from `rng` (the angle, then the scale, then the displacements
    /// down and across, each only where it is on) applied to `pixels`. `blurs`: the
    /// elastic distortion's smoothing down the columns and along the rows.
    fn apply(
        &self,
        pixels: &[u8],
        size: (usize, usize),
        blurs: Option<&(Blur, Blur)>,
        rng: &mut Rng,
    ) -> Vec<u8> {
        let (max_degrees, max_scale) = (self.max_degrees, self.max_scale);
        let degrees = if max_degrees > 0.0 {
            rng.uniform_in(-max_degrees, max_degrees)
        } else {
            0.0
        };
        let scale = if max_scale > 0.0 {
            rng.uniform_in(1.0 - max_scale, 1.0 + max_scale)
        } else {
            1.0
        };
        let fields = self.elastic.zip(blurs).map(|(elastic, (down, across))| {
            let mut field = || {
                let noise: Vec<f64> = (0..size.0 * size.1)
                    .map(|_| rng.uniform_in(-1.0, 1.0))
                    .collect();
                Blur::smooth(&noise, size, down, across, elastic.alpha)
            };
            (field(), field())
        });
        let field = fields.as_ref().map(|(d, r)| (d.as_slice(), r.as_slice()));
        warp(pixels, size, degrees, scale, field, self.sampling)
    }
}

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
    /// A copy with every image resampled by its own draw of `distortion` (each image
    /// draws from a generator seeded by the next word of `rng`, in image order) and
    /// encoded anew with MNIST's temporal code. Only for images that keep the pixel
    /// bytes they were encoded from (MNIST).
    pub fn distorted(&self, distortion: &Distortion, rng: &mut Rng) -> Result<Dataset> {
        let (Some((rows, cols)), Some(pixels)) = (self.image_size, &self.pixels) else {
            return Err(Error::InvalidConfig(
                "rotations, scalings and elastic distortions apply to image tasks only \
                 (--task mnist)"
                    .into(),
            ));
        };
        if let Some(elastic) = &distortion.elastic {
            elastic.validate()?;
        }
        let blurs = distortion
            .elastic
            .map(|e| (Blur::new(rows, e.sigma), Blur::new(cols, e.sigma)));
        let mut times = Vec::with_capacity(pixels.len());
        for image in pixels.chunks(rows * cols) {
            let mut image_rng = Rng::new(rng.next_u64());
            let warped = distortion.apply(image, (rows, cols), blurs.as_ref(), &mut image_rng);
            times.extend(warped.into_iter().map(temporal_bin));
        }
        Ok(self.with_event_times(times))
    }

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

    /// `n` images of `rows` x `cols` random bytes (half of them background, 0), with
    /// their pixel bytes kept, as MNIST's are.
    fn pixel_images(n: usize, (rows, cols): (usize, usize)) -> Dataset {
        let mut rng = Rng::new(11);
        let pixels: Vec<u8> = (0..n * rows * cols)
            .map(|_| match rng.bit() {
                true => rng.below(256) as u8,
                false => 0,
            })
            .collect();
        let times = pixels.iter().map(|&v| temporal_bin(v)).collect();
        Dataset::from_event_times(
            times,
            (0..n as u32).map(|l| l % 10).collect(),
            20,
            rows * cols,
            10,
        )
        .with_image_size(rows, cols)
        .with_pixels(pixels)
    }

    #[test]
    fn no_rotation_scaling_or_displacement_leaves_an_image_unchanged_byte_for_byte() {
        let data = pixel_images(3, (28, 28));
        let image = &data.pixels.as_ref().unwrap()[..784];
        for sampling in Sampling::ALL {
            assert_eq!(warp(image, (28, 28), 0.0, 1.0, None, sampling), image);
            let zero = vec![0.0; 784];
            let field = Some((&zero[..], &zero[..]));
            assert_eq!(warp(image, (28, 28), 0.0, 1.0, field, sampling), image);
            // A whole-pixel displacement moves the image exactly, as a shift does.
            let one = vec![1.0; 784];
            let moved: Vec<u8> = translate(image, (28, 28), (-1, -1), 0);
            let field = Some((&one[..], &one[..]));
            assert_eq!(warp(image, (28, 28), 0.0, 1.0, field, sampling), moved);
            // An elastic distortion of alpha 0 displaces nothing (the draws still happen).
            let still = Distortion {
                elastic: Some(Elastic {
                    alpha: 0.0,
                    sigma: 4.0,
                }),
                sampling,
                ..Distortion::default()
            };
            let blurs = (Blur::new(28, 4.0), Blur::new(28, 4.0));
            let mut rng = Rng::new(5);
            assert_eq!(still.apply(image, (28, 28), Some(&blurs), &mut rng), image);
            // A data set distorted by nothing keeps its event times.
            let nothing = Distortion {
                sampling,
                ..Distortion::default()
            };
            assert!(nothing.is_identity());
            let same = data.distorted(&nothing, &mut Rng::new(1)).unwrap();
            assert_eq!((&same.source, &same.labels), (&data.source, &data.labels));
        }
    }

    #[test]
    fn a_quarter_turn_and_a_doubling_move_pixels_where_expected() {
        // A 5 x 5 image, centre (2, 2): a pixel right of the centre and one above it.
        let mut image = [0u8; 25];
        image[2 * 5 + 4] = 255;
        image[2] = 200;
        for sampling in Sampling::ALL {
            // Counter-clockwise as shown: right goes up, up goes left.
            let left = warp(&image, (5, 5), 90.0, 1.0, None, sampling);
            let mut expected = [0u8; 25];
            expected[2] = 255;
            expected[2 * 5] = 200;
            assert_eq!(left, expected, "{sampling:?}");
            // Clockwise: right goes down, up goes right.
            let right = warp(&image, (5, 5), -90.0, 1.0, None, sampling);
            let mut expected = [0u8; 25];
            expected[4 * 5 + 2] = 255;
            expected[2 * 5 + 4] = 200;
            assert_eq!(right, expected, "{sampling:?}");
            // Half the size: the pixel two right of the centre moves to one right.
            let mut far = [0u8; 25];
            far[2 * 5 + 4] = 255;
            let halved = warp(&far, (5, 5), 0.0, 0.5, None, sampling);
            assert_eq!(&halved[2 * 5..3 * 5], &[0, 0, 0, 255, 0], "{sampling:?}");
            assert_eq!(halved.iter().filter(|&&v| v > 0).count(), 1, "{sampling:?}");
        }
        // Twice the size: the pixel one right of the centre moves to two right. The
        // output pixels between come from halfway between two source pixels (1.5 and 2.5
        // rows or columns from the edge) or a quarter of the way in each direction.
        let mut dot = [0u8; 25];
        dot[2 * 5 + 3] = 255;
        // Bilinear: halfway is 127.5, rounded to 128; a quarter each way 63.75, to 64.
        let doubled = warp(&dot, (5, 5), 0.0, 2.0, None, Sampling::Bilinear);
        #[rustfmt::skip]
        let expected = [
            0, 0, 0, 0, 0,
            0, 0, 0, 64, 128,
            0, 0, 0, 128, 255,
            0, 0, 0, 64, 128,
            0, 0, 0, 0, 0,
        ];
        assert_eq!(doubled, expected);
        // Nearest: the dot covers a 2 x 2 block at full value; halfway goes down and
        // right (row 1.5 to row 2, column 2.5 to column 3).
        let doubled = warp(&dot, (5, 5), 0.0, 2.0, None, Sampling::Nearest);
        #[rustfmt::skip]
        let expected = [
            0, 0, 0, 0, 0,
            0, 0, 0, 255, 255,
            0, 0, 0, 255, 255,
            0, 0, 0, 0, 0,
            0, 0, 0, 0, 0,
        ];
        assert_eq!(doubled, expected);
    }

    #[test]
    fn the_nearest_pixel_is_the_one_whose_square_holds_the_coordinate() {
        // A 2 x 3 image: rows [1 2 3], [4 5 6].
        let image = [1, 2, 3, 4, 5, 6];
        let at = |y, x| nearest(&image, (2, 3), y, x);
        assert_eq!((at(0.0, 0.0), at(1.0, 2.0)), (1, 6));
        assert_eq!((at(0.49, 0.51), at(0.5, 0.49), at(-0.5, -0.5)), (2, 4, 1));
        assert_eq!((at(1.49, 2.49), at(0.2, 1.7)), (6, 3));
        // Outside the frame: background.
        for (y, x) in [
            (-0.51, 0.0),
            (0.0, -0.6),
            (1.5, 0.0),
            (0.0, 2.5),
            (-7.0, 9.0),
        ] {
            assert_eq!(at(y, x), 0, "({y}, {x})");
        }
    }

    #[test]
    fn nearest_sampling_keeps_the_values_of_the_image_where_bilinear_makes_new_ones() {
        let data = pixel_images(20, (28, 28));
        let elastic = Some(Elastic {
            alpha: 34.0,
            sigma: 4.0,
        });
        let blurs = (Blur::new(28, 4.0), Blur::new(28, 4.0));
        let mut new_values = [0usize; 2];
        for (image_index, image) in data.pixels.as_ref().unwrap().chunks(784).enumerate() {
            let mut present = [false; 256];
            present[0] = true;
            for &v in image {
                present[v as usize] = true;
            }
            for (s, sampling) in Sampling::ALL.into_iter().enumerate() {
                let distortion = Distortion {
                    max_degrees: 15.0,
                    max_scale: 0.15,
                    elastic,
                    sampling,
                };
                let mut rng = Rng::new(image_index as u64);
                let out = distortion.apply(image, (28, 28), Some(&blurs), &mut rng);
                assert_ne!(out, image, "{sampling:?}: the image moved");
                new_values[s] += out.iter().filter(|&&v| !present[v as usize]).count();
            }
        }
        // Every value nearest sampling gives is one of the image's (or background);
        // bilinear interpolation makes values in between.
        assert_eq!(new_values[0], 0);
        assert!(new_values[1] > 1000, "{new_values:?}");
    }

    #[test]
    fn the_smoothing_sums_to_one_away_from_the_edges() {
        let blur = Blur::new(100, 4.0);
        assert_eq!(blur.weights.len(), 17, "4 sigma either way");
        let total = blur.weights[0] + 2.0 * blur.weights[1..].iter().sum::<f64>();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
        // A field of ones, smoothed and scaled by 3: 3 in the middle, less at the edges,
        // where values outside count as 0.
        let (rows, cols) = (40, 40);
        let (down, across) = (Blur::new(rows, 4.0), Blur::new(cols, 4.0));
        let ones = vec![1.0; rows * cols];
        let smooth = Blur::smooth(&ones, (rows, cols), &down, &across, 3.0);
        assert!((smooth[20 * cols + 20] - 3.0).abs() < 1e-12);
        let half: f64 = down.weights.iter().sum();
        assert!(half < 0.6);
        assert!(
            (smooth[0] - 3.0 * half * half).abs() < 1e-12,
            "{}",
            smooth[0]
        );
        // A kernel wider than the line keeps its weights for the distances there are.
        assert_eq!(Blur::new(5, 4.0).weights.len(), 5);
    }

    #[test]
    fn distortions_are_drawn_from_the_seed_and_keep_the_images_shape() {
        for sampling in Sampling::ALL {
            distortions_drawn_from_the_seed_keep_the_images_shape(sampling);
        }
        // The sampling draws nothing: each image's generator ends where it would with
        // the other sampling, so what a run draws after the distortions does not
        // depend on it; the images differ.
        let data = pixel_images(1, (28, 28));
        let image = &data.pixels.as_ref().unwrap()[..];
        let blurs = (Blur::new(28, 4.0), Blur::new(28, 4.0));
        let [(near, after_near), (smooth, after_smooth)] = Sampling::ALL.map(|sampling| {
            let distortion = Distortion {
                max_degrees: 15.0,
                max_scale: 0.15,
                elastic: Some(Elastic {
                    alpha: 34.0,
                    sigma: 4.0,
                }),
                sampling,
            };
            let mut rng = Rng::new(3);
            let out = distortion.apply(image, (28, 28), Some(&blurs), &mut rng);
            (out, rng.next_u64())
        });
        assert_eq!(after_near, after_smooth);
        assert_ne!(near, smooth);
    }

    fn distortions_drawn_from_the_seed_keep_the_images_shape(sampling: Sampling) {
        let data = pixel_images(40, (28, 28));
        let distortion = Distortion {
            max_degrees: 15.0,
            max_scale: 0.15,
            elastic: Some(Elastic {
                alpha: 34.0,
                sigma: 4.0,
            }),
            sampling,
        };
        let a = data.distorted(&distortion, &mut Rng::new(7)).unwrap();
        assert_eq!(a.labels, data.labels);
        assert_eq!(
            (a.len(), a.steps, a.input, a.classes, a.image_size),
            (40, 20, 784, 10, Some((28, 28)))
        );
        let Source::EventTimes(times) = &a.source else {
            panic!("still event times")
        };
        assert_eq!(times.len(), 40 * 784);
        assert!(times.iter().all(|&t| t < 20));
        assert_ne!(a.source, data.source, "the images moved");
        assert!(
            !a.has_pixels(),
            "its times were not encoded from the original bytes"
        );
        assert_eq!(data.distorted(&distortion, &mut Rng::new(7)).unwrap(), a);
        assert_ne!(data.distorted(&distortion, &mut Rng::new(8)).unwrap(), a);
        // Each part alone changes the images too, and draws from the seed.
        for part in [
            Distortion {
                max_degrees: 15.0,
                sampling,
                ..Distortion::default()
            },
            Distortion {
                max_scale: 0.15,
                sampling,
                ..Distortion::default()
            },
            Distortion {
                elastic: distortion.elastic,
                sampling,
                ..Distortion::default()
            },
        ] {
            let one = data.distorted(&part, &mut Rng::new(7)).unwrap();
            assert_ne!(one.source, data.source, "{part:?}");
            assert_eq!(data.distorted(&part, &mut Rng::new(7)).unwrap(), one);
        }
        // Every image draws from its own generator, seeded in image order: the first
        // 10 images come out the same from a set of 10.
        let first = data
            .slice(0..10)
            .distorted(&distortion, &mut Rng::new(7))
            .unwrap();
        assert_eq!(first, a.slice(0..10));
    }

    #[test]
    fn distortions_are_refused_where_they_make_no_sense() {
        let distortion = Distortion {
            max_degrees: 10.0,
            ..Distortion::default()
        };
        // Event times without the bytes they came from.
        let err = images(1)
            .distorted(&distortion, &mut Rng::new(1))
            .unwrap_err();
        assert!(err.to_string().contains("--task mnist"), "{err}");
        let not_images = Dataset::from_event_times(vec![0; 4], vec![0], 2, 4, 2);
        let err = not_images
            .distorted(&distortion, &mut Rng::new(1))
            .unwrap_err();
        assert!(err.to_string().contains("--task mnist"), "{err}");
        let bad = Distortion {
            elastic: Some(Elastic {
                alpha: 34.0,
                sigma: 0.0,
            }),
            ..Distortion::default()
        };
        let err = pixel_images(1, (28, 28))
            .distorted(&bad, &mut Rng::new(1))
            .unwrap_err();
        assert!(err.to_string().contains("--augment-elastic"), "{err}");
    }

    #[test]
    fn elastic_settings_parse_as_alpha_colon_sigma_or_are_refused_naming_the_flag() {
        assert_eq!(
            Elastic::parse("34:4").unwrap(),
            Elastic {
                alpha: 34.0,
                sigma: 4.0
            }
        );
        assert_eq!(Elastic::parse(" 8 : 0.5 ").unwrap().sigma, 0.5);
        for (spec, why) in [
            ("34", "no ':'"),
            ("", "no ':'"),
            ("a:4", "ALPHA is not a number"),
            ("34:", "SIGMA is not a number"),
            ("34:4:1", "SIGMA is not a number"),
            ("0:4", "ALPHA must be above 0"),
            ("-3:4", "ALPHA must be above 0"),
            ("inf:4", "ALPHA must be above 0"),
            ("NaN:4", "ALPHA must be above 0"),
            ("34:0", "SIGMA must be above 0"),
            ("34:-1", "SIGMA must be above 0"),
            ("34:NaN", "SIGMA must be above 0"),
            ("34:29", "at most 28 pixels"),
        ] {
            let err = Elastic::parse(spec).unwrap_err().to_string();
            assert!(
                err.contains("--augment-elastic") && err.contains(why),
                "{spec}: {err}"
            );
        }
        let err = Elastic {
            alpha: 34.0,
            sigma: -1.0,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("--augment-elastic: SIGMA"), "{err}");
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
