//! An ordered parallel map on std threads: items fed in order are worked on
//! by a few workers and come out in the order they went in. `state_json`
//! runs its per-record work (parse, encode, compress; or decode, print)
//! through it. Memory: at most `ahead` items queued on each side, plus one
//! per worker and the results that finished early (bounded by the same).

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::Scope;

/// Worker threads for per-record work: one per core, at most 4 (the
/// feeding and consuming threads need a share too).
pub(crate) fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

/// The feeding end: items sent here are numbered in order.
pub(crate) struct Feed<I> {
    tx: SyncSender<(usize, I)>,
    next: usize,
}

impl<I> Feed<I> {
    /// Queue `item` (blocks while `ahead` items wait). False once the
    /// pipeline stopped (the consumer dropped its end or a worker died).
    pub(crate) fn send(&mut self, item: I) -> bool {
        let ok = self.tx.send((self.next, item)).is_ok();
        self.next += 1;
        ok
    }
}

/// The consuming end: results in feed order. Ends when the feed was
/// dropped and every result came out; dropping it stops the workers.
pub(crate) struct Ordered<O> {
    rx: Receiver<(usize, O)>,
    early: BTreeMap<usize, O>,
    want: usize,
}

impl<O> Iterator for Ordered<O> {
    type Item = O;
    fn next(&mut self) -> Option<O> {
        loop {
            if let Some(o) = self.early.remove(&self.want) {
                self.want += 1;
                return Some(o);
            }
            let (i, o) = self.rx.recv().ok()?;
            self.early.insert(i, o);
        }
    }
}

/// Start `threads` workers in `scope`, each with its own `init()` state,
/// running `work` on every fed item.
pub(crate) fn spawn<'scope, I, O, S, F, W>(
    scope: &'scope Scope<'scope, '_>,
    threads: usize,
    ahead: usize,
    init: F,
    work: W,
) -> (Feed<I>, Ordered<O>)
where
    I: Send + 'scope,
    O: Send + 'scope,
    F: Fn() -> S + Send + Sync + 'scope,
    W: Fn(&mut S, I) -> O + Send + Sync + 'scope,
{
    let (tx, rx) = sync_channel::<(usize, I)>(ahead);
    let (otx, orx) = sync_channel::<(usize, O)>(ahead);
    let rx = Arc::new(Mutex::new(rx));
    let (init, work) = (Arc::new(init), Arc::new(work));
    for _ in 0..threads.max(1) {
        let (rx, otx, init, work) = (rx.clone(), otx.clone(), init.clone(), work.clone());
        scope.spawn(move || {
            let mut state = init();
            loop {
                let next = match rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok((i, item)) = next else { return };
                if otx.send((i, work(&mut state, item))).is_err() {
                    return;
                }
            }
        });
    }
    (
        Feed { tx, next: 0 },
        Ordered {
            rx: orx,
            early: BTreeMap::new(),
            want: 0,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_out_in_feed_order() {
        let got: Vec<u64> = std::thread::scope(|s| {
            let (mut feed, out) = spawn(
                s,
                3,
                2,
                || 0u64,
                |n: &mut u64, x: u64| {
                    *n += 1;
                    // Uneven work, so workers finish out of order.
                    std::thread::sleep(std::time::Duration::from_micros((x % 7) * 50));
                    x * 2
                },
            );
            s.spawn(move || {
                for x in 0..200 {
                    assert!(feed.send(x));
                }
            });
            out.collect()
        });
        assert_eq!(got, (0..200).map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn dropping_the_results_stops_the_feed() {
        std::thread::scope(|s| {
            let (mut feed, out) = spawn(s, 2, 1, || (), |_: &mut (), x: u32| x);
            drop(out);
            let sent = (0..100).take_while(|&x| feed.send(x)).count();
            assert!(
                sent < 100,
                "the feed kept accepting after the end was dropped"
            );
        });
    }
}
