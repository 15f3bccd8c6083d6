//! The OpenMemory HTTP adapter (being written).
