//! Temporally encoded MNIST (docs/design.md, 'Tasks'): each pixel becomes one input
//! event of value 1.0 in one of 20 time bins; a pixel byte v goes to bin
//! min(19, (255 - v) * 20 / 255) in integer arithmetic (the exact value of
//! floor((1 - v/255) / 0.05)), so the brightest pixels arrive at t = 0 and the
//! background at t = 19.
//!
//! Reads the standard IDX files (gzip or raw) from a folder, so Fashion-MNIST in the
//! same format works too. Splits: train = the first 55,000 training images, val =
//! the last 5,000 (for model selection), test = the 10,000 test images.

use super::Dataset;
use super::idx;
use super::task::Split;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Time bins of the encoding.
pub const STEPS: usize = 20;
/// Classes (digits).
pub const CLASSES: usize = 10;
/// Training images held out as the validation split.
pub const VAL_SIZE: usize = 5_000;

/// The bin of a pixel byte: min(19, floor((1 - v/255) / 0.05)), in exact integer arithmetic.
pub fn temporal_bin(v: u8) -> u8 {
    (((255 - v as u32) * 20) / 255).min(STEPS as u32 - 1) as u8
}

/// Finds `stem` or `stem.gz` in `dir`.
fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let path = dir.join(&name);
        if path.exists() {
            return Ok(path);
        }
    }
    Err(Error::file(
        dir.join(stem),
        format!("missing (looked for {stem} and {stem}.gz; is --data an MNIST folder?)"),
    ))
}

/// The contents of an image file and its label file.
struct ImagesAndLabels {
    /// Rows and columns of every image.
    image_size: (usize, usize),
    /// Pixel bytes, image after image, row by row.
    pixels: Vec<u8>,
    labels: Vec<u32>,
}

/// Reads an image file and its label file, checking that they agree.
fn read_pair(dir: &Path, prefix: &str) -> Result<ImagesAndLabels> {
    let images_path = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = idx::read(&images_path)?;
    let labels = idx::read(&labels_path)?;
    if images.dims.len() != 3 {
        return Err(Error::file(
            &images_path,
            format!(
                "expected 3 dimensions (images, rows, columns), found {:?}",
                images.dims
            ),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(Error::file(
            &labels_path,
            format!("expected 1 dimension (labels), found {:?}", labels.dims),
        ));
    }
    if images.dims[0] == 0 {
        return Err(Error::file(&images_path, "holds no images"));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(Error::file(
            &labels_path,
            format!(
                "holds {} labels for {} images in {}",
                labels.dims[0],
                images.dims[0],
                images_path.display()
            ),
        ));
    }
    if let Some(l) = labels.data.iter().find(|&&l| l as usize >= CLASSES) {
        return Err(Error::file(
            &labels_path,
            format!("label {l} is not a digit 0-9"),
        ));
    }
    Ok(ImagesAndLabels {
        image_size: (images.dims[1], images.dims[2]),
        pixels: images.data,
        labels: labels.data.iter().map(|&l| l as u32).collect(),
    })
}

/// Loads `split` from the MNIST folder `dir`.
pub fn load(dir: &Path, split: Split) -> Result<Dataset> {
    let prefix = if split == Split::Test {
        "t10k"
    } else {
        "train"
    };
    let ImagesAndLabels {
        image_size: (rows, cols),
        pixels,
        labels,
    } = read_pair(dir, prefix)?;
    let times: Vec<u8> = pixels.iter().map(|&v| temporal_bin(v)).collect();
    // The pixel bytes stay for the augmentations that resample images.
    let all = Dataset::from_event_times(times, labels, STEPS, rows * cols, CLASSES)
        .with_image_size(rows, cols)
        .with_pixels(pixels);
    let n = all.len();
    Ok(match split {
        Split::Test => all,
        _ if n <= VAL_SIZE => {
            return Err(Error::file(
                dir,
                format!(
                    "the training set has {n} images; at least {} are needed",
                    VAL_SIZE + 1
                ),
            ));
        }
        Split::Train => all.slice(0..n - VAL_SIZE),
        Split::Val => all.slice(n - VAL_SIZE..n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_the_formula() {
        assert_eq!(temporal_bin(255), 0);
        assert_eq!(temporal_bin(0), 19);
        // p = 0.95 exactly is not representable in bytes; 243/255 = 0.953 -> bin 0,
        // 242/255 = 0.949 -> bin 1.
        assert_eq!(temporal_bin(243), 0);
        assert_eq!(temporal_bin(242), 1);
        for v in 0..=255u8 {
            let p = v as f64 / 255.0;
            let expected = (((1.0 - p) / 0.05) + 1e-9).floor().min(19.0) as u8;
            assert_eq!(temporal_bin(v), expected, "pixel {v}");
        }
    }

    fn write_mnist(dir: &Path, prefix: &str, images: &[[u8; 4]], labels: &[u8]) {
        std::fs::create_dir_all(dir).unwrap();
        let flat: Vec<u8> = images.iter().flatten().copied().collect();
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte")),
            idx::encode(&[images.len(), 2, 2], &flat),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte")),
            idx::encode(&[labels.len()], labels),
        )
        .unwrap();
    }

    #[test]
    fn hand_made_images_encode_as_events() {
        let dir = std::env::temp_dir().join(format!("rankcode-mnist-{}", std::process::id()));
        write_mnist(&dir, "t10k", &[[255, 0, 128, 242]], &[7]);
        let test = load(&dir, Split::Test).unwrap();
        assert_eq!(
            (test.len(), test.input, test.steps, test.labels[0]),
            (1, 4, 20, 7)
        );
        assert_eq!(test.image_size, Some((2, 2)));
        let seq = test.sequence(0);
        let step_of = |pixel: usize| (0..20).find(|&t| seq[t * 4 + pixel] == 1.0).unwrap();
        assert_eq!(
            [step_of(0), step_of(1), step_of(2), step_of(3)],
            [0, 19, 9, 1]
        );
        assert_eq!(seq.iter().sum::<f32>(), 4.0, "one event per pixel");
        // Too few training images for a validation split.
        write_mnist(&dir, "train", &[[0; 4]; 3], &[1, 2, 3]);
        assert!(
            load(&dir, Split::Train)
                .unwrap_err()
                .to_string()
                .contains("at least")
        );
        // Labels that disagree with the images, and labels that are not digits.
        write_mnist(&dir, "t10k", &[[0; 4]; 2], &[1]);
        let err = load(&dir, Split::Test).unwrap_err().to_string();
        assert!(
            err.contains("t10k-labels") && err.contains("1 labels for 2 images"),
            "{err}"
        );
        write_mnist(&dir, "t10k", &[[0; 4]], &[12]);
        assert!(
            load(&dir, Split::Test)
                .unwrap_err()
                .to_string()
                .contains("not a digit")
        );
        // An empty test split: nothing to report on.
        write_mnist(&dir, "t10k", &[], &[]);
        let err = load(&dir, Split::Test).unwrap_err().to_string();
        assert!(
            err.contains("t10k-images-idx3-ubyte: holds no images"),
            "{err}"
        );
        let err = load(Path::new("/nowhere"), Split::Test)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nowhere") && err.contains("missing"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The real data set, when present (it is in this project's shared folder).
    #[test]
    fn real_mnist_matches_its_published_facts() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/mnist");
        if !dir.exists() {
            // Under CI the data must be there; elsewhere, say loudly that it was not.
            assert!(
                std::env::var_os("CI").is_none(),
                "MNIST not found at {}",
                dir.display()
            );
            eprintln!("SKIPPED: MNIST not found at {}", dir.display());
            return;
        }
        let ImagesAndLabels {
            image_size,
            pixels: data,
            labels,
        } = read_pair(&dir, "train").unwrap();
        assert_eq!(image_size, (28, 28));
        assert_eq!(labels.len(), 60_000);
        assert_eq!(&labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
        let mean = data.iter().map(|&v| v as f64).sum::<f64>() / data.len() as f64 / 255.0;
        assert!((mean - 0.1307).abs() < 1e-4, "{mean}");
        let test = load(&dir, Split::Test).unwrap();
        assert_eq!(&test.labels[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
        assert_eq!(
            (
                load(&dir, Split::Train).unwrap().len(),
                load(&dir, Split::Val).unwrap().len()
            ),
            (55_000, 5_000)
        );
    }
}
