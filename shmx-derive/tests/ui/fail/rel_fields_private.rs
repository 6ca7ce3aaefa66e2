// The offset and length of a relative pointer are private: safe code cannot forge a pointer
// with an offset of its choosing (only empty ones are made outside a chunk), with a struct
// literal, a functional update of an empty one, or a `RelStr` around a forged slice.
// (Assigning `empty.offset = 8` is refused too, with E0616; that error is reported by type
// checking, which stops the compiler before the privacy check that reports these.)
use shmx::{RelSlice, RelStr};
use std::marker::{PhantomData, PhantomPinned};

fn main() {
    let forged: RelSlice<u8> = RelSlice {
        offset: 8,
        len: 1,
        ..RelSlice::new()
    };
    let literal: RelSlice<u16> = RelSlice {
        offset: 8,
        len: 1,
        _t: PhantomData,
        _pin: PhantomPinned,
    };
    let forged_str = RelStr { bytes: forged };
    let _ = (literal, forged_str);
}
