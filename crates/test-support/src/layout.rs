//! OCI image layout directories (`oci:DIR:TAG` for skopeo and podman).

use std::path::Path;

use crate::{Blob, Image, Index};

/// Writes `images` and `indexes` into an OCI layout at `dir`, each manifest
/// named by the tag paired with it.
pub fn write_oci_layout(dir: &Path, images: &[(&str, &Image)], indexes: &[(&str, &Index)]) {
    let write_blob = |blob: &Blob| {
        let path = dir.join("blobs/sha256").join(blob.digest.hex());
        std::fs::create_dir_all(path.parent().expect("blob path has a parent"))
            .expect("creating the layout's blob directory");
        std::fs::write(path, &blob.bytes).expect("writing a layout blob");
    };
    let mut entries = Vec::new();
    let mut write_image = |image: &Image| {
        image.blobs().for_each(write_blob);
        write_blob(&image.manifest);
    };
    for (tag, image) in images {
        write_image(image);
        entries.push(tagged(&image.manifest, tag));
    }
    for (tag, index) in indexes {
        index.images.iter().for_each(&mut write_image);
        write_blob(&index.manifest);
        entries.push(tagged(&index.manifest, tag));
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("writing oci-layout");
    let index = serde_json::json!({ "schemaVersion": 2, "manifests": entries });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("writing index.json");
}

fn tagged(manifest: &Blob, tag: &str) -> serde_json::Value {
    let mut descriptor = manifest.descriptor();
    descriptor["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": tag });
    descriptor
}
