// A relative pointer named through an alias or a renamed import would get no accessors:
// refused at the field.
use shmx::{RelSlice, RelStr as Text, ShmMessage};

type Bytes = RelSlice<u8>;

#[derive(ShmMessage)]
#[repr(C)]
pub struct Blob {
    pub seq: u64,
    pub data: Bytes,
}

#[derive(ShmMessage)]
#[repr(C)]
pub struct Note {
    pub text: Text,
}

fn main() {}
