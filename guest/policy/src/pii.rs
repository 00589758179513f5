//! Finds personal data in a request's free text, and redacts it: e-mail addresses, phone
//! numbers and payment-card numbers. A hand-written scanner over the text's bytes (no
//! regex engine in the component); every position it reports is at an ASCII byte, so
//! slicing there is safe in UTF-8.
//!
//! - E-mail: around each `@`, a local part of letters, digits and `. _ % + -`, and a
//!   domain of letters, digits, `.` and `-` with at least one dot, ending in a label of
//!   two or more letters (trailing dots and hyphens are punctuation, not the address).
//! - Numbers: a run of digits, optionally led by `+` or `(`, in which digits may be
//!   separated by up to two of space, `-`, `.`, `(` and `)` at a time. A run of 13 to 19
//!   digits separated only by spaces or dashes that passes the Luhn check is a card
//!   (reported as a card, not a phone); any other run of 9 or more digits is a phone
//!   number, a Luhn-failing 16-digit run included. Shorter runs (`42`, dates, amounts)
//!   are not personal data.
//!
//! The scanner errs on the side of the box: a long run of digits that is not a phone
//! number (an order number, a timestamp) is reported too, which at worst keeps a request
//! local or redacts a number that could have left.

use std::fmt;

/// What a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// A payment-card number.
    Card,
}

impl Kind {
    /// The word used in routing reasons: `e-mail`, `phone`, `card`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Email => "e-mail",
            Self::Phone => "phone",
            Self::Card => "card",
        }
    }

    /// What replaces it in redacted text: `[EMAIL]`, `[PHONE]`, `[CARD]`.
    pub fn placeholder(self) -> &'static str {
        match self {
            Self::Email => "[EMAIL]",
            Self::Phone => "[PHONE]",
            Self::Card => "[CARD]",
        }
    }
}

/// One piece of personal data: its kind and byte range in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// What it is.
    pub kind: Kind,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// How many of each kind a text holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// E-mail addresses.
    pub emails: usize,
    /// Phone numbers.
    pub phones: usize,
    /// Card numbers.
    pub cards: usize,
}

impl Counts {
    /// The counts of `findings`.
    pub fn of(findings: &[Finding]) -> Self {
        let count = |kind| findings.iter().filter(|f| f.kind == kind).count();
        Self {
            emails: count(Kind::Email),
            phones: count(Kind::Phone),
            cards: count(Kind::Card),
        }
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.emails + self.phones + self.cards == 0
    }

    fn each(&self) -> impl Iterator<Item = (Kind, usize)> {
        [
            (Kind::Email, self.emails),
            (Kind::Phone, self.phones),
            (Kind::Card, self.cards),
        ]
        .into_iter()
        .filter(|&(_, n)| n > 0)
    }

    /// The kinds found, e.g. `e-mail, card`.
    pub fn kinds(&self) -> String {
        let words: Vec<&str> = self.each().map(|(kind, _)| kind.word()).collect();
        words.join(", ")
    }
}

impl fmt::Display for Counts {
    /// E.g. `1 e-mail, 2 cards`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .each()
            .map(|(kind, n)| {
                let plural = if n == 1 { "" } else { "s" };
                format!("{n} {}{plural}", kind.word())
            })
            .collect();
        write!(f, "{}", parts.join(", "))
    }
}

/// Every piece of personal data in `text`, in order, none overlapping.
pub fn scan(text: &str) -> Vec<Finding> {
    let bytes = text.as_bytes();
    let emails = emails(bytes);
    let mut findings = Vec::new();
    let mut next_email = emails.iter().peekable();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(email) = next_email.next_if(|e| e.start <= i) {
            findings.push(*email);
            i = email.end;
            continue;
        }
        let limit = next_email.peek().map_or(bytes.len(), |e| e.start);
        match number_at(&bytes[..limit], i) {
            Some(number) => {
                i = number.end;
                findings.extend(number.kind.map(|kind| Finding {
                    kind,
                    start: number.start,
                    end: number.end,
                }));
            }
            None => i += 1,
        }
    }
    findings
}

/// `text` with every finding replaced by its placeholder.
pub fn redact(text: &str, findings: &[Finding]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in findings {
        out.push_str(&text[at..f.start]);
        out.push_str(f.kind.placeholder());
        at = f.end;
    }
    out.push_str(&text[at..]);
    out
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// The e-mail addresses in `bytes`.
fn emails(bytes: &[u8]) -> Vec<Finding> {
    let mut found: Vec<Finding> = Vec::new();
    for (at, _) in bytes.iter().enumerate().filter(|&(_, &b)| b == b'@') {
        let floor = found.last().map_or(0, |f| f.end);
        if at < floor {
            continue;
        }
        let mut start = at;
        while start > floor && is_local_byte(bytes[start - 1]) {
            start -= 1;
        }
        while start < at && bytes[start] == b'.' {
            start += 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain_byte(bytes[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let domain = &bytes[at + 1..end];
        let top = domain.rsplit(|&b| b == b'.').next().unwrap_or_default();
        let valid = start < at
            && domain.first().is_some_and(u8::is_ascii_alphanumeric)
            && domain.contains(&b'.')
            && !domain.windows(2).any(|w| w == b"..")
            && top.len() >= 2
            && top.iter().all(u8::is_ascii_alphabetic);
        if valid {
            found.push(Finding {
                kind: Kind::Email,
                start,
                end,
            });
        }
    }
    found
}

/// A run of digits and what it is, if anything.
struct Number {
    start: usize,
    end: usize,
    kind: Option<Kind>,
}

fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'(' | b')')
}

/// The number starting at `i` (a digit, or `+` or `(` before one), if any.
fn number_at(bytes: &[u8], i: usize) -> Option<Number> {
    let digit_at = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_digit);
    let led = matches!(bytes[i], b'+' | b'(');
    if !(digit_at(i) || led && digit_at(i + 1)) {
        return None;
    }
    let mut pos = if led { i + 1 } else { i };
    let mut digits = Vec::new();
    let mut card_separators = !led;
    let mut end = pos;
    loop {
        if digit_at(pos) {
            digits.push(bytes[pos] - b'0');
            pos += 1;
            end = pos;
            continue;
        }
        let mut j = pos;
        while j < bytes.len() && j - pos < 2 && is_separator(bytes[j]) {
            j += 1;
        }
        if j == pos || !digit_at(j) {
            break;
        }
        card_separators &= bytes[pos..j].iter().all(|&b| matches!(b, b' ' | b'-'));
        pos = j;
    }
    let kind = if (13..=19).contains(&digits.len()) && card_separators && luhn(&digits) {
        Some(Kind::Card)
    } else if digits.len() >= 9 {
        Some(Kind::Phone)
    } else {
        None
    };
    Some(Number {
        start: i,
        end,
        kind,
    })
}

/// The Luhn checksum used by payment-card numbers.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &d)| {
            let d = u32::from(d);
            if k % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(Kind, &str)> {
        scan(text)
            .into_iter()
            .map(|f| (f.kind, &text[f.start..f.end]))
            .collect()
    }

    #[test]
    fn finds_email_addresses() {
        assert_eq!(
            found("write to Jane.Doe+forms@mail.example.co.uk."),
            [(Kind::Email, "Jane.Doe+forms@mail.example.co.uk")]
        );
        assert_eq!(
            found("a@b.io and (x_y@host-1.org)"),
            [(Kind::Email, "a@b.io"), (Kind::Email, "x_y@host-1.org")]
        );
        for not_email in [
            "@home",
            "me@localhost",
            "a@b.c",
            "a@.com",
            "x@y..com",
            "5 @ 6",
        ] {
            assert_eq!(found(not_email), [], "{not_email}");
        }
    }

    #[test]
    fn finds_phone_numbers_in_their_usual_shapes() {
        for phone in [
            "+44 20 7946 0958",
            "(555) 123-4567",
            "+1 (555) 123-4567",
            "555.123.4567",
            "0612345678",
            "06-12-34-56-78",
        ] {
            assert_eq!(
                found(&format!("call {phone} now")),
                [(Kind::Phone, phone)],
                "{phone}"
            );
        }
    }

    #[test]
    fn plain_numbers_are_not_personal_data() {
        for text in [
            "42",
            "it is a 7, I think",
            "page 12 of 300",
            "12345678",
            "on 2024-01-15",
            "1,234,567.89 dollars",
            "",
        ] {
            assert_eq!(found(text), [], "{text}");
        }
    }

    #[test]
    fn luhn_valid_card_numbers_are_cards_and_invalid_ones_are_not() {
        assert_eq!(
            found("card 4111 1111 1111 1111 exp 12/29"),
            [(Kind::Card, "4111 1111 1111 1111")]
        );
        assert_eq!(
            found("5500-0000-0000-0004"),
            [(Kind::Card, "5500-0000-0000-0004")]
        );
        assert_eq!(found("378282246310005"), [(Kind::Card, "378282246310005")]);
        // One digit off: not a card, but still a long run of digits.
        assert_eq!(
            found("4111 1111 1111 1112"),
            [(Kind::Phone, "4111 1111 1111 1112")]
        );
        // Card-length and Luhn-valid but with dots: written like a phone number.
        assert_eq!(
            found("4111.1111.1111.1111"),
            [(Kind::Phone, "4111.1111.1111.1111")]
        );
        assert!(luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
    }

    #[test]
    fn digits_inside_an_email_are_part_of_the_email() {
        assert_eq!(
            found("0612345678@sms.example.com or 0612345678"),
            [
                (Kind::Email, "0612345678@sms.example.com"),
                (Kind::Phone, "0612345678")
            ]
        );
    }

    #[test]
    fn redaction_replaces_each_finding_and_counts_read_well() {
        let text = "Mail jo@example.org or call +33 6 12 34 56 78, card 4111-1111-1111-1111 ✓";
        let findings = scan(text);
        assert_eq!(
            redact(text, &findings),
            "Mail [EMAIL] or call [PHONE], card [CARD] ✓"
        );
        let counts = Counts::of(&findings);
        assert_eq!(counts.to_string(), "1 e-mail, 1 phone, 1 card");
        assert_eq!(counts.kinds(), "e-mail, phone, card");
        let two = Counts::of(&scan("a@b.io c@d.io"));
        assert_eq!(
            (two.to_string(), two.kinds()),
            ("2 e-mails".into(), "e-mail".into())
        );
        assert!(Counts::of(&[]).is_empty());
    }
}
