// Names end up in the topic's schema text, which tools parse and print: only the grammar's
// identifiers are accepted, so no name can mimic the grammar or reach a terminal raw.
use shmx::ShmMessage;

// The grammar's own punctuation: would print the same schema as a two-field struct.
#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "u8,b@1:u8")]
pub struct Injected {
    pub a: u8,
}

// A primitive's name.
#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "u8")]
pub struct Shadow {
    pub a: u8,
}

// A terminal escape sequence.
#[derive(ShmMessage)]
#[repr(u8)]
#[shm(name = "\u{1b}]0;owned\u{7}")]
pub enum Escape {
    A,
}

// Non-ASCII field and variant names.
#[derive(ShmMessage)]
#[repr(C)]
pub struct Measure {
    pub größe: u8,
}

#[derive(ShmMessage)]
#[repr(u8)]
pub enum Weather {
    Sunny,
    Bewölkt,
}

fn main() {}
