//! Key rotation: rewrite the slot list and header tag, copy the payload
//! unchanged (SPEC.md §3.1, §5: the stream AAD covers only the header core).

use std::io::{Read, Seek, SeekFrom, Write};

use crate::error::{Error, Result};
use crate::format::{Layout, check_not_too_many, make_slots};
#[allow(unused_imports)] // for the docs
use crate::keys::SlotSpec;
use crate::keys::{Argon2Params, Randomness, ToSlotSpec, Unlock};

/// Copy the bundle in `src` to `out`, with its key slots replaced by one slot
/// per `new_unlocks` ([`Unlock`]s or [`SlotSpec`]s, e.g.
/// `SlotSpec::Recipient`), after proving access with `unlock`. Any
/// signature is dropped (the bytes change): re-sign afterwards.
pub fn rekey<R: Read + Seek, W: Write, S: ToSlotSpec>(
    src: R,
    unlock: &Unlock,
    new_unlocks: &[S],
    argon2: Argon2Params,
    out: W,
    rng: &mut dyn Randomness,
) -> Result<W> {
    rekey_slots(src, unlock, new_unlocks, false, argon2, out, rng)
}

/// Like [`rekey`], but keep every existing slot and append one per `add`:
/// add a recipient (or a key, or a passphrase) without knowing the others'
/// secrets. At most 16 slots in all.
pub fn rekey_add<R: Read + Seek, W: Write, S: ToSlotSpec>(
    src: R,
    unlock: &Unlock,
    add: &[S],
    argon2: Argon2Params,
    out: W,
    rng: &mut dyn Randomness,
) -> Result<W> {
    rekey_slots(src, unlock, add, true, argon2, out, rng)
}

fn rekey_slots<R: Read + Seek, W: Write, S: ToSlotSpec>(
    mut src: R,
    unlock: &Unlock,
    new: &[S],
    keep: bool,
    argon2: Argon2Params,
    mut out: W,
    rng: &mut dyn Randomness,
) -> Result<W> {
    // Usage errors first, before an Argon2 run proves access.
    if new.is_empty() {
        return Err(Error::Usage(if keep {
            "nothing to add: pass at least one key or recipient".into()
        } else {
            "a bundle needs at least one key".into()
        }));
    }
    check_not_too_many(new.len())?;
    let layout = Layout::read(&mut src)?;
    let kept = if keep {
        layout.header.slots.clone()
    } else {
        vec![]
    };
    check_not_too_many(kept.len() + new.len())?;
    argon2.check()?;
    let mut file_key = layout.header.unlock(unlock)?;
    let mut slots = kept;
    slots.extend(make_slots(
        new,
        argon2,
        &file_key,
        &layout.header.bundle_id(),
        rng,
    )?);
    let header = layout.header.with_slots(slots, &file_key);
    zeroize::Zeroize::zeroize(&mut file_key);
    out.write_all(&header.bytes())
        .map_err(Error::io("cannot write the bundle"))?;
    src.seek(SeekFrom::Start(layout.payload_start))
        .map_err(Error::io("cannot read the bundle"))?;
    let mut payload = src.take(layout.payload_end - layout.payload_start);
    std::io::copy(&mut payload, &mut out).map_err(Error::io("cannot copy the payload"))?;
    Ok(out)
}
