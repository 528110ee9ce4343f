//! Key rotation: rewrite the slot list and header tag, copy the payload
//! unchanged (SPEC.md §3.1, §5: the stream AAD covers only the header core).

use std::io::{Read, Seek, SeekFrom, Write};

use crate::error::{Error, Result};
use crate::format::{Layout, check_not_too_many, make_slots};
use crate::keys::{Argon2Params, Randomness, Unlock};

/// Copy the bundle in `src` to `out`, with its key slots replaced by one slot
/// per `new_unlocks`, after proving access with `unlock`. Any signature is
/// dropped (the bytes change): re-sign afterwards.
pub fn rekey<R: Read + Seek, W: Write>(
    mut src: R,
    unlock: &Unlock,
    new_unlocks: &[Unlock],
    argon2: Argon2Params,
    mut out: W,
    rng: &mut dyn Randomness,
) -> Result<W> {
    // Usage errors first, before an Argon2 run proves access.
    if new_unlocks.is_empty() {
        return Err(Error::Usage("a bundle needs at least one key".into()));
    }
    check_not_too_many(new_unlocks)?;
    let layout = Layout::read(&mut src)?;
    let file_key = layout.header.unlock(unlock)?;
    let slots = make_slots(
        new_unlocks,
        argon2,
        &file_key,
        &layout.header.bundle_id(),
        rng,
    )?;
    let header = layout.header.with_slots(slots, &file_key);
    out.write_all(&header.bytes())
        .map_err(Error::io("cannot write the bundle"))?;
    src.seek(SeekFrom::Start(layout.payload_start))
        .map_err(Error::io("cannot read the bundle"))?;
    let mut payload = src.take(layout.payload_end - layout.payload_start);
    std::io::copy(&mut payload, &mut out).map_err(Error::io("cannot copy the payload"))?;
    Ok(out)
}
