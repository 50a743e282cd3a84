//! The one walk down an error's chain of causes. HTTP clients wrap what went wrong (our
//! resolver's verdict, rustls', an `io::Error`) in errors of their own; `io::Error` even hides
//! the error it wraps from `source()`, so every reader of a foreign error goes through here
//! rather than through a loop of its own.

use std::error::Error;

/// `error` and every cause under it, outermost first; an `io::Error` is looked through to the
/// error it wraps.
pub(crate) fn causes<'a>(
    error: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&s: &&'a (dyn Error + 'static)| {
        match s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => s.source(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Inner;

    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("inner")
        }
    }

    impl Error for Inner {}

    #[test]
    fn looks_through_an_io_error_to_what_it_wraps() {
        let wrapped = std::io::Error::other(Inner);
        let found: Vec<_> = causes(&wrapped).collect();
        assert_eq!(found.len(), 2, "the io::Error, then what it wraps");
        assert!(found[1].downcast_ref::<Inner>().is_some());
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(causes(&plain).count(), 1);
    }
}
