//! Helpers the unit tests of several modules share.

/// A parser's answer, as far as a test of refused input cares: did it take the input?
pub(crate) trait Answer {
    fn accepted(&self) -> bool;
}

impl<T, E> Answer for Result<T, E> {
    fn accepted(&self) -> bool {
        self.is_ok()
    }
}

impl<T> Answer for Option<T> {
    fn accepted(&self) -> bool {
        self.is_some()
    }
}

/// Asserts that `parse` refuses every one of `inputs`, naming the first it takes.
#[track_caller]
pub(crate) fn assert_refused<I, A>(parse: impl Fn(&I) -> A, inputs: &[&I])
where
    I: AsRef<[u8]> + ?Sized,
    A: Answer,
{
    for input in inputs {
        assert!(
            !parse(input).accepted(),
            "{:?} should be refused",
            String::from_utf8_lossy(input.as_ref())
        );
    }
}

/// UIDs from their numbers, for tests that name messages by number.
pub(crate) fn uids(numbers: impl IntoIterator<Item = u32>) -> Vec<crate::contracts::Uid> {
    numbers.into_iter().map(crate::contracts::Uid).collect()
}
