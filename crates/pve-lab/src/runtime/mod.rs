//! Real containers: templates, rootfs images, network namespaces, systemd-nspawn.
