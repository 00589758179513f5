//! One batch split across the box's idle cores (the model's `split_batch` opt-in).
//!
//! A model run holds one CPU slot and runs on one thread. When a model's config names the
//! shape symbol of its inputs' leading axis (`split_batch = "B"`), the rows along that
//! axis are independent samples, so a batch can be cut into contiguous parts, each part
//! run on its own thread holding its own slot, and the outputs put back together along
//! axis 0 in the same order. The registry only does this with slots free at that moment
//! (see [`super::CpuSlots::try_acquire_up_to`]), so under concurrent load nothing splits.
//!
//! The steps: [`BatchSplit::rows`] reads the batch size (every batched input must agree),
//! [`part_sizes`] cuts it as evenly as possible, [`split_inputs`] slices the batched inputs
//! by rows and copies the others whole into every part, [`run_parts`] runs the parts on
//! scoped threads (the caller's thread runs the first), and [`concat_outputs`] checks that
//! every output's axis 0 is its part's rows and appends the parts' bytes in order.
//!
//! A core lent to a batch is given back as soon as another run wants it: each helper
//! thread works through its part a few rows at a time (about [`YIELD_AFTER`] of work) and
//! stops when a run is waiting for a slot. The calling thread, once its own part is done,
//! takes the rest of the helpers' rows from the back, so a helper that stopped, or whose
//! core is busy with another process, never holds the batch up. Without the pieces, a
//! single sentence arriving just after a batch split waited for half the batch (measured
//! on a busy machine: p99 of such sentences 3-5x worse).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cpu_slots::{CpuSlot, CpuSlots};
use super::{Backend, Tensor, TensorSpec};

/// Which of a model's inputs (in the model's order) carry the batch on axis 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSplit {
    symbol: String,
    batched: Vec<bool>,
}

impl BatchSplit {
    /// The split of a model whose inputs `batched[i]` have the batch (`symbol`) on axis 0.
    /// `None` if no input has it: such a model has nothing to split.
    pub fn new(symbol: &str, batched: Vec<bool>) -> Option<Self> {
        batched.contains(&true).then(|| Self {
            symbol: symbol.to_owned(),
            batched,
        })
    }

    /// The batch's shape symbol, as configured.
    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// The number of rows of the batch in `inputs` (in the model's order, already checked
    /// against its declared shapes): axis 0 of every batched input, which must agree.
    pub fn rows(&self, inputs: &[Tensor], specs: &[TensorSpec]) -> Result<usize, String> {
        let mut rows: Option<(usize, &str)> = None;
        for ((tensor, spec), _) in inputs
            .iter()
            .zip(specs)
            .zip(&self.batched)
            .filter(|(_, batched)| **batched)
        {
            let Some(&n) = tensor.dims.first() else {
                return Err(format!(
                    "input {:?} is a scalar, but split_batch {:?} is its axis 0",
                    spec.name, self.symbol
                ));
            };
            match rows {
                None => rows = Some((n, &spec.name)),
                Some((m, first)) if m != n => {
                    return Err(format!(
                        "inputs {first:?} and {:?} disagree on the batch {:?}: {m} and {n} rows",
                        spec.name, self.symbol
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(rows.map_or(0, |(n, _)| n))
    }
}

impl BatchSplit {
    /// The rows of a part's inputs: axis 0 of its first batched input.
    fn rows_of_part(&self, inputs: &[Tensor]) -> usize {
        inputs
            .iter()
            .zip(&self.batched)
            .find(|(_, batched)| **batched)
            .and_then(|(t, _)| t.dims.first().copied())
            .unwrap_or(0)
    }
}

/// `rows` cut into `parts` contiguous parts, as even as possible (the first ones one row
/// longer when it does not divide); never an empty part (`parts` is capped at `rows`).
pub fn part_sizes(rows: usize, parts: usize) -> Vec<usize> {
    let parts = parts.clamp(1, rows.max(1));
    let (each, longer) = (rows / parts, rows % parts);
    (0..parts).map(|i| each + usize::from(i < longer)).collect()
}

/// The inputs of each part: batched inputs sliced by rows (`sizes` in order, summing to
/// the batch), the others copied whole into every part.
pub fn split_inputs(split: &BatchSplit, inputs: &[Tensor], sizes: &[usize]) -> Vec<Vec<Tensor>> {
    let mut parts: Vec<Vec<Tensor>> = sizes
        .iter()
        .map(|_| Vec::with_capacity(inputs.len()))
        .collect();
    for (tensor, &batched) in inputs.iter().zip(&split.batched) {
        if !batched {
            for part in &mut parts {
                part.push(tensor.clone());
            }
            continue;
        }
        let rows = tensor.dims.first().copied().unwrap_or(0);
        let row_bytes = tensor.data.len().checked_div(rows).unwrap_or(0);
        let mut start = 0;
        for (part, &size) in parts.iter_mut().zip(sizes) {
            let mut dims = tensor.dims.clone();
            dims[0] = size;
            let end = start + size * row_bytes;
            part.push(Tensor {
                dims,
                ty: tensor.ty,
                data: tensor.data[start..end].to_vec(),
            });
            start = end;
        }
    }
    parts
}

/// Checks that every output's axis 0 is the `rows` of the run that made it: the outputs of
/// a split model are rows of the batch, or they cannot be put back together.
pub fn check_outputs(outputs: &[Tensor], rows: usize, specs: &[TensorSpec]) -> Result<(), String> {
    for (tensor, spec) in outputs.iter().zip(specs) {
        if tensor.dims.first() != Some(&rows) {
            return Err(format!(
                "output {:?} has shape {:?}: with split_batch set, every output's axis 0 must \
                 be the batch ({rows} rows here); remove split_batch from this model's config",
                spec.name, tensor.dims
            ));
        }
    }
    Ok(())
}

/// The parts' outputs put back together: each output's parts appended along axis 0, in
/// part order. Every part's output must have its part's rows on axis 0 and the same
/// element type and other dimensions as the first part's.
pub fn concat_outputs(
    parts: Vec<Vec<Tensor>>,
    sizes: &[usize],
    specs: &[TensorSpec],
) -> Result<Vec<Tensor>, String> {
    for (outputs, &rows) in parts.iter().zip(sizes) {
        check_outputs(outputs, rows, specs)?;
        if outputs.len() != specs.len() {
            return Err(format!(
                "a part returned {} outputs, the model declares {}",
                outputs.len(),
                specs.len()
            ));
        }
    }
    let mut parts = parts.into_iter();
    let mut joined = parts.next().unwrap_or_default();
    for outputs in parts {
        for ((whole, part), spec) in joined.iter_mut().zip(outputs).zip(specs) {
            if part.ty != whole.ty || part.dims[1..] != whole.dims[1..] {
                return Err(format!(
                    "output {:?}: parts disagree beyond axis 0 ({} {:?} and {} {:?})",
                    spec.name, whole.ty, whole.dims, part.ty, part.dims
                ));
            }
            whole.dims[0] += part.dims[0];
            whole.data.extend_from_slice(&part.data);
        }
    }
    Ok(joined)
}

/// How long a core lent to a batch stays busy with its rows before it checks whether a
/// run is waiting for a slot: a run that arrives while a batch is split waits about this
/// long (or one row, if a row takes longer) for the core the batch borrowed. Shorter
/// pieces cost more: every run of the model has a fixed cost (measured with MiniLM at
/// 16 tokens: one row 7.7 ms, 5.8 ms a row in a batch of 32).
pub const YIELD_AFTER: Duration = Duration::from_millis(50);

/// The rows of a helper's first piece, before it knows the pace (two: one row alone pays
/// the whole fixed cost of a run).
const FIRST_PIECE: usize = 2;

/// What the threads of a split run made: the outputs of every piece of rows, in row
/// order.
pub struct Pieces {
    /// The outputs of each piece, in row order.
    pub outputs: Vec<Vec<Tensor>>,
    /// The rows of each piece.
    pub rows: Vec<usize>,
    /// Helpers that gave their core back to a waiting run before their part was done.
    pub yielded: usize,
}

/// A helper's part: its inputs, and the rows not taken yet, `next..end`. The helper takes
/// pieces from the front; the calling thread, once its own part is done, from the back.
struct Shared {
    inputs: Vec<Tensor>,
    left: Mutex<(usize, usize)>,
}

impl Shared {
    /// Takes up to `most` rows from the front, or half of the rows left (rounded up) from
    /// the back: their first row and count.
    fn take(&self, most: usize, from_back: bool) -> Option<(usize, usize)> {
        let mut left = self.left.lock().unwrap_or_else(|p| p.into_inner());
        let (next, end) = *left;
        let rest = end.saturating_sub(next);
        // Powers of two: pieces of a few sizes only, each of which can earn a plan of its
        // own (see `shape_plans`), where arbitrary sizes would each run on the generic plan.
        let n = if from_back {
            power_of_two_at_most(rest.div_ceil(2))
        } else {
            power_of_two_at_most(most.max(1).min(rest))
        };
        if n == 0 {
            return None;
        }
        if from_back {
            left.1 -= n;
            Some((end - n, n))
        } else {
            left.0 += n;
            Some((next, n))
        }
    }
}

/// One piece of rows of part `part` run by some thread: where it starts, how many rows,
/// and what the model returned.
type Piece = (usize, usize, usize, Result<Vec<Tensor>, String>);

/// Runs each part (`sizes[i]` rows) on `backend`: the first on the calling thread, each
/// other on a scoped thread of its own holding one of `slots`. Helpers run their part a
/// piece at a time, two rows first and then as many rows as take about [`YIELD_AFTER`]
/// (pieces are powers of two, so that they come in a few shapes);
/// before each piece a helper checks `cpu` and, when a run is waiting for a slot, stops
/// and gives its slot back. Once its own part is done, the calling thread takes half of
/// the rows left in each helper's part from the back, again and again until none are
/// left, so a helper that stopped, or runs on a core busy with other work, never holds
/// the batch up. A piece that fails or panics fails the run, naming its part; every
/// thread is joined before this returns.
pub fn run_parts(
    backend: &dyn Backend,
    split: &BatchSplit,
    parts: Vec<Vec<Tensor>>,
    sizes: &[usize],
    slots: Vec<CpuSlot<'_>>,
    cpu: &CpuSlots,
) -> Result<Pieces, String> {
    let count = parts.len();
    debug_assert_eq!(slots.len() + 1, count, "one slot per part after the first");
    let run = |inputs: Vec<Tensor>| {
        let outputs =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| backend.run(inputs)));
        // Whatever the backend did, this thread's wide registers are left clean (see
        // `vector_state`): the calling thread goes on to run guest code.
        super::vector_state::clear_upper_halves();
        outputs.unwrap_or_else(|_| Err("the backend panicked".to_owned()))
    };
    let mut parts = parts.into_iter().zip(sizes.iter().copied());
    let (first, first_rows) = parts.next().unwrap_or_default();
    let shared: Vec<Shared> = parts
        .map(|(inputs, rows)| Shared {
            inputs,
            left: Mutex::new((0, rows)),
        })
        .collect();
    let (run, shared) = (&run, &shared);
    let (mut pieces, yielded) = std::thread::scope(|scope| {
        let helpers: Vec<_> = shared
            .iter()
            .enumerate()
            .zip(slots)
            .map(|((i, part), slot)| {
                scope.spawn(move || {
                    let mut done = Vec::new();
                    let mut most = FIRST_PIECE;
                    let yielded = loop {
                        if cpu.has_waiters() {
                            break true;
                        }
                        let Some((start, n)) = part.take(most, false) else {
                            break false;
                        };
                        let started = Instant::now();
                        let outputs = run(rows_of(split, &part.inputs, start, n));
                        most = rows_within(YIELD_AFTER, started.elapsed(), n);
                        let failed = outputs.is_err();
                        done.push((i + 1, start, n, outputs));
                        if failed {
                            break false;
                        }
                    };
                    drop(slot);
                    (done, yielded)
                })
            })
            .collect();
        let mut pieces: Vec<Piece> = vec![(0, 0, first_rows, run(first))];
        for (i, part) in shared.iter().enumerate() {
            while let Some((start, n)) = part.take(0, true) {
                pieces.push((i + 1, start, n, run(rows_of(split, &part.inputs, start, n))));
            }
        }
        let mut yielded = 0;
        for (i, handle) in helpers.into_iter().enumerate() {
            match handle.join() {
                Ok((done, gave_back)) => {
                    pieces.extend(done);
                    yielded += usize::from(gave_back);
                }
                Err(_) => pieces.push((i + 1, 0, 0, Err("the backend panicked".to_owned()))),
            }
        }
        (pieces, yielded)
    });
    pieces.sort_by_key(|(part, start, _, _)| (*part, *start));
    let mut joined = Pieces {
        outputs: Vec::with_capacity(pieces.len()),
        rows: Vec::with_capacity(pieces.len()),
        yielded,
    };
    for (part, _, rows, outputs) in pieces {
        let outputs =
            outputs.map_err(|e| format!("{e} (part {} of {count} of a split batch)", part + 1))?;
        joined.outputs.push(outputs);
        joined.rows.push(rows);
    }
    Ok(joined)
}

/// Rows `start..start + n` of a part's inputs (the others whole).
fn rows_of(split: &BatchSplit, inputs: &[Tensor], start: usize, n: usize) -> Vec<Tensor> {
    let rows = split.rows_of_part(inputs);
    let cut = split_inputs(split, inputs, &[start, n, rows - start - n]);
    cut.into_iter().nth(1).unwrap_or_default()
}

/// The largest power of two not above `n` (0 for 0).
fn power_of_two_at_most(n: usize) -> usize {
    if n == 0 { 0 } else { 1 << n.ilog2() }
}

/// How many rows fit in `budget` at the pace of the last piece (`n` rows in `took`); at
/// least one.
fn rows_within(budget: Duration, took: Duration, n: usize) -> usize {
    let per_row = took.as_nanos() / (n.max(1) as u128);
    usize::try_from(budget.as_nanos() / per_row.max(1))
        .unwrap_or(usize::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::ElementType;

    fn spec(name: &str) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            ty: ElementType::Fp32,
            shape: vec![None, Some(2)],
        }
    }

    /// Rows `first..first + rows` of a `[rows, 2]` tensor whose row `r` is `[r, -r]`.
    fn rows(first: usize, rows: usize) -> Tensor {
        let values: Vec<f32> = (first..first + rows)
            .flat_map(|r| [r as f32, -(r as f32)])
            .collect();
        Tensor::from_f32(vec![rows, 2], &values)
    }

    #[test]
    fn pieces_are_powers_of_two_and_cover_every_row() {
        let shared = Shared {
            inputs: Vec::new(),
            left: Mutex::new((0, 23)),
        };
        let mut taken = Vec::new();
        taken.push(shared.take(2, false).expect("rows left"));
        taken.push(shared.take(7, false).expect("rows left"));
        while let Some(piece) = shared.take(0, true) {
            taken.push(piece);
        }
        assert!(taken.iter().all(|(_, n)| n.is_power_of_two()), "{taken:?}");
        taken.sort();
        let mut next = 0;
        for (start, n) in taken {
            assert_eq!(start, next, "pieces are contiguous");
            next += n;
        }
        assert_eq!(next, 23);
    }

    #[test]
    fn parts_are_contiguous_even_and_never_empty() {
        assert_eq!(part_sizes(32, 2), vec![16, 16]);
        assert_eq!(part_sizes(5, 2), vec![3, 2]);
        assert_eq!(part_sizes(7, 3), vec![3, 2, 2]);
        assert_eq!(part_sizes(2, 4), vec![1, 1], "capped at one row a part");
        assert_eq!(part_sizes(1, 2), vec![1]);
        assert_eq!(part_sizes(9, 0), vec![9], "at least one part");
        for (n, k) in [(33, 2), (100, 7), (3, 3)] {
            let sizes = part_sizes(n, k);
            assert_eq!(sizes.iter().sum::<usize>(), n);
            let (longest, shortest) = (sizes.iter().max(), sizes.iter().min());
            assert!(longest.zip(shortest).is_some_and(|(l, s)| l - s <= 1));
        }
    }

    #[test]
    fn batched_inputs_are_sliced_by_rows_and_the_others_copied_whole() {
        let split = BatchSplit::new("B", vec![true, false]).expect("one batched input");
        let state = Tensor::from_f32(vec![1, 2], &[7.0, 8.0]);
        let parts = split_inputs(&split, &[rows(0, 5), state.clone()], &[3, 2]);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], vec![rows(0, 3), state.clone()]);
        assert_eq!(parts[1], vec![rows(3, 2), state]);
    }

    #[test]
    fn outputs_are_put_back_in_part_order() {
        let specs = [spec("y")];
        let parts = vec![vec![rows(0, 3)], vec![rows(3, 1)], vec![rows(4, 2)]];
        let joined = concat_outputs(parts, &[3, 1, 2], &specs).expect("joins");
        assert_eq!(joined, vec![rows(0, 6)]);
        // Swapped parts give a different tensor: the order is the parts' order.
        let swapped = concat_outputs(vec![vec![rows(3, 3)], vec![rows(0, 3)]], &[3, 3], &specs)
            .expect("joins");
        assert_ne!(swapped, vec![rows(0, 6)]);
    }

    #[test]
    fn a_model_with_no_batched_input_has_nothing_to_split() {
        assert_eq!(BatchSplit::new("B", vec![false, false]), None);
    }

    #[test]
    fn batched_inputs_must_agree_on_the_rows() {
        let split = BatchSplit::new("B", vec![true, false, true]).expect("batched");
        let specs = [spec("ids"), spec("h"), spec("mask")];
        let whole = Tensor::from_f32(vec![1, 2], &[0.0, 0.0]);
        assert_eq!(
            split.rows(&[rows(0, 4), whole.clone(), rows(0, 4)], &specs),
            Ok(4)
        );
        let err = split
            .rows(&[rows(0, 4), whole, rows(0, 3)], &specs)
            .expect_err("disagree");
        assert_eq!(
            err,
            "inputs \"ids\" and \"mask\" disagree on the batch \"B\": 4 and 3 rows"
        );
    }

    #[test]
    fn an_output_without_the_batch_on_axis_0_is_a_clear_error() {
        let specs = [spec("y"), spec("pooled")];
        let pooled = Tensor::from_f32(vec![1, 2], &[0.0, 0.0]);
        let err = concat_outputs(
            vec![vec![rows(0, 2), pooled.clone()], vec![rows(2, 2), pooled]],
            &[2, 2],
            &specs,
        )
        .expect_err("not batched");
        assert!(
            err.starts_with("output \"pooled\" has shape [1, 2]: with split_batch set"),
            "{err}"
        );
        let err =
            check_outputs(&[Tensor::from_f32(vec![], &[1.0])], 3, &specs).expect_err("scalar");
        assert!(err.contains("(3 rows here)"), "{err}");
    }

    #[test]
    fn parts_that_disagree_beyond_axis_0_are_refused() {
        let specs = [spec("y")];
        let wide = Tensor::from_f32(vec![1, 3], &[0.0; 3]);
        let err = concat_outputs(vec![vec![rows(0, 1)], vec![wide]], &[1, 1], &specs)
            .expect_err("different widths");
        assert!(err.contains("parts disagree beyond axis 0"), "{err}");
    }
}
