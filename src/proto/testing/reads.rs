//! Ways to cut input into reads, proptest strategies, and nom outcome tables.

use proptest::prelude::*;

/// Every way to read `input` in two pieces, each between `before` and `after`
/// reads, labelled with the cut.
pub(crate) fn two_reads<'a>(
    before: &'a [&'a [u8]],
    input: &'a [u8],
    after: &'a [&'a [u8]],
) -> impl Iterator<Item = (usize, Vec<&'a [u8]>)> + 'a {
    (0..=input.len()).map(move |cut| {
        let mut chunks = before.to_vec();
        chunks.extend([&input[..cut], &input[cut..]]);
        chunks.extend(after);
        (cut, chunks)
    })
}

/// Every way to read `before` then `after` with one of them cut in two, labelled
/// with the phase and the cut.
pub(crate) fn phased_reads<'a>(before: &'a [u8], after: &'a [u8]) -> Vec<(String, Vec<&'a [u8]>)> {
    let first = (0..=before.len()).map(|cut| {
        let chunks = vec![&before[..cut], &before[cut..], after];
        (format!("phase 0 cut {cut}"), chunks)
    });
    let second = (0..=after.len()).map(|cut| {
        let chunks = vec![before, &after[..cut], &after[cut..]];
        (format!("phase 1 cut {cut}"), chunks)
    });
    first.chain(second).collect()
}

/// `input` one byte per read.
pub(crate) fn bytewise(input: &[u8]) -> Vec<&[u8]> {
    input.chunks(1).collect()
}

/// `input` split at `cuts` (taken modulo its length, in any order).
pub(crate) fn cut_at(input: &[u8], cuts: Vec<usize>) -> Vec<&[u8]> {
    let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks: Vec<&[u8]> = Vec::new();
    let mut prev = 0;
    for c in cuts.into_iter().chain([input.len()]) {
        chunks.push(&input[prev..c]);
        prev = c;
    }
    chunks
}

/// Grammar pieces and noise, for "anything goes" inputs: up to 40 of `tokens` or
/// short runs of arbitrary bytes.
pub(crate) fn soup(tokens: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    // each token as likely as the noise (as `prop_oneof!` of all of them would be)
    let weight = u32::try_from(tokens.len()).unwrap();
    let token = prop_oneof![
        weight => one_of(tokens),
        1 => proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

/// One of `lines`.
pub(crate) fn one_of(lines: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    proptest::sample::select(lines).prop_map(<[u8]>::to_vec)
}

/// A nom parser outcome with the remainder owned, so table rows can be compared.
#[derive(Debug, PartialEq)]
pub(crate) enum Out<T> {
    Done(T, Vec<u8>),
    More,
    Bad,
}

/// One parser table row: input and expected outcome.
pub(crate) type Row<T> = (&'static [u8], T);

/// The outcome of a nom parser, owned.
pub(crate) fn run<T>(r: nom::IResult<&[u8], T>) -> Out<T> {
    match r {
        Ok((rest, v)) => Out::Done(v, rest.to_vec()),
        Err(nom::Err::Incomplete(_)) => Out::More,
        Err(_) => Out::Bad,
    }
}

/// A complete parse of `v` leaving `rest`.
pub(crate) fn done<T>(v: T, rest: &[u8]) -> Out<T> {
    Out::Done(v, rest.to_vec())
}
