//! Reading the serverless model's reply: the first ASCII digit in it is the label
//! (`7`, `7.`, `The digit is 7` all read as 7). A reply without one is a bad answer,
//! which the pipelines treat like any other escalation failure.

/// The label in `reply`, or `None` when it has no ASCII digit.
pub fn label(reply: &str) -> Option<u8> {
    reply
        .bytes()
        .find(u8::is_ascii_digit)
        .map(|digit| digit - b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_ascii_digit_is_the_label() {
        assert_eq!(label("7"), Some(7));
        assert_eq!(label(" 0\n"), Some(0));
        assert_eq!(label("The digit is 4, or 9"), Some(4));
        assert_eq!(label("**3**"), Some(3));
    }

    #[test]
    fn no_ascii_digit_is_no_label() {
        assert_eq!(label(""), None);
        assert_eq!(label("seven"), None);
        assert_eq!(label("sim reply"), None);
        // Other scripts' digits are not ASCII digits.
        assert_eq!(label("٧"), None);
    }
}
