//! Release artifacts: downloaded on the host, verified against the profile's sha256, cached,
//! and unpacked before they are pushed into a container.
