//! Words in messages: counts with their nouns.

/// `n` and `noun`, plural unless `n` is 1: `1 epoch`, `2 epochs`.
pub fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(0, "epoch"), "0 epochs");
        assert_eq!(count(1, "epoch"), "1 epoch");
        assert_eq!(count(24, "epoch"), "24 epochs");
    }
}
