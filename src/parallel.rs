//! Splitting one call across rayon threads (feature `rayon`), written once for every job.
//!
//! A job is cut in halves at a multiple of its unit (whole mask words, whole chunks, whole
//! rows) until the pieces are small, and the halves run under `rayon::join` in the pool the
//! call runs in. Each piece knows its first element, so it starts its stream at
//! `offset + first`: the output bits and mask words are those of the serial call for any
//! number of threads and any cut.

use crate::job::Data;

/// Below this many elements a call stays serial: split in two, a 32Ki call took longer than
/// on one thread, a 64Ki call less (`parallel/threshold` in `benches/parallel.rs`, AMD EPYC
/// Zen 4 VM). Waking the second thread costs what the machine's scheduler makes it: on an
/// Intel Xeon VM a split paid only from 512Ki on (256Ki: 1.19x the serial time, 512Ki:
/// 0.66x), so callers with many mid-sized calls there are better served serially.
#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
pub(crate) const SERIAL_BELOW: usize = 1 << 16;

/// Pieces are cut down to at most this many elements.
#[cfg(feature = "rayon")]
const PIECE: usize = 1 << 15;

/// A job that can be cut at an element index.
#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
pub(crate) trait Split: Sized + Send {
    fn len(&self) -> usize;
    /// The first `mid` elements and the rest (`mid` a multiple of the job's unit).
    fn split_at(self, mid: usize) -> (Self, Self);
}

impl<T: Copy + Send + Sync> Split for Data<'_, T> {
    fn len(&self) -> usize {
        Data::len(self)
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        Data::split_at(self, mid)
    }
}

/// Elements with the mask words they write (the unit is a multiple of 64).
impl<T: Copy + Send + Sync> Split for (Data<'_, T>, Option<&mut [u64]>) {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (d1, d2) = self.0.split_at(mid);
        match self.1 {
            Some(m) => {
                let (m1, m2) = m.split_at_mut(mid / 64);
                ((d1, Some(m1)), (d2, Some(m2)))
            }
            None => ((d1, None), (d2, None)),
        }
    }
}

/// Elements with the mask words they read (the unit is a multiple of 64).
impl<T: Copy + Send + Sync> Split for (Data<'_, T>, &[u64]) {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (d1, d2) = self.0.split_at(mid);
        let (m1, m2) = self.1.split_at(mid / 64);
        ((d1, m1), (d2, m2))
    }
}

/// `run(first, piece)` over pieces of `job` cut at multiples of `unit` elements, on rayon
/// threads when `parallel` and the job has at least [`SERIAL_BELOW`] elements; else
/// `run(0, job)`.
pub(crate) fn for_pieces<J: Split>(
    parallel: bool,
    job: J,
    unit: usize,
    run: &(impl Fn(usize, J) + Sync),
) {
    #[cfg(feature = "rayon")]
    if parallel && job.len() >= SERIAL_BELOW {
        return split(0, job, unit.max(1), run);
    }
    let _ = (parallel, unit);
    run(0, job)
}

#[cfg(feature = "rayon")]
fn split<J: Split>(first: usize, job: J, unit: usize, run: &(impl Fn(usize, J) + Sync)) {
    let n = job.len();
    let mid = n / 2 / unit * unit;
    if n <= PIECE || mid == 0 {
        return run(first, job);
    }
    let (a, b) = job.split_at(mid);
    rayon::join(
        || split(first, a, unit, run),
        || split(first + mid, b, unit, run),
    );
}
