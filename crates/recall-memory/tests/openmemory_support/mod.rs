//! Test support for the OpenMemory adapter: a stateful emulator of an
//! OpenMemory v1.3.0 server and the recorded fixtures.

#![allow(dead_code)]

pub mod emulator;
pub mod fixtures;
