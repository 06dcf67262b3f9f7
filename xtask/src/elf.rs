//! Reading ARM ELF files (being written).
