//! Images built in memory: gzip-compressed tar layers of random content, an
//! image config, an OCI or Docker manifest, and multi-platform indexes.

use std::io::Write;

use bytes::Bytes;
use rand::RngCore;
use registry_core::Digest;
use registry_core::media_types::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

/// Content and its digest.
#[derive(Clone, Debug)]
pub struct Blob {
    pub digest: Digest,
    pub bytes: Bytes,
    pub media_type: String,
}

impl Blob {
    pub fn new(media_type: &str, bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Blob {
            digest: Digest::sha256_of(&bytes),
            bytes,
            media_type: media_type.to_owned(),
        }
    }

    /// The OCI descriptor of this blob.
    pub fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest.to_string(),
            "size": self.bytes.len(),
        })
    }
}

/// `size` random bytes.
pub fn random_bytes(size: usize) -> Vec<u8> {
    let mut bytes = vec![0; size];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A single-platform image: config, layers and the manifest over them.
#[derive(Clone, Debug)]
pub struct Image {
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub manifest: Blob,
    pub architecture: String,
}

impl Image {
    /// An OCI image for linux/amd64 with `layer_count` layers of random files.
    pub fn random(layer_count: usize, layer_size: usize) -> Self {
        Image::build(&vec![layer_size; layer_count], "amd64", OCI_MANIFEST, None)
    }

    /// An OCI image for linux/amd64 with one layer of a random file of
    /// each size.
    pub fn with_layer_sizes(sizes: &[usize]) -> Self {
        Image::build(sizes, "amd64", OCI_MANIFEST, None)
    }

    /// The same, as a Docker schema 2 manifest.
    pub fn random_docker(layer_count: usize, layer_size: usize) -> Self {
        Image::build(
            &vec![layer_size; layer_count],
            "amd64",
            DOCKER_MANIFEST,
            None,
        )
    }

    /// An OCI image for linux/`architecture`.
    pub fn random_for(architecture: &str) -> Self {
        Image::build(&[1024], architecture, OCI_MANIFEST, None)
    }

    /// An artifact manifest (`artifactType`, empty config) that refers to
    /// `subject`.
    pub fn artifact(artifact_type: &str, subject: &Blob) -> Self {
        let config = Blob::new("application/vnd.oci.empty.v1+json", &b"{}"[..]);
        let layer = Blob::new("text/plain", random_bytes(64));
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
            "subject": subject.descriptor(),
            "annotations": { "org.opencontainers.image.title": "signature" },
        });
        Image {
            config,
            layers: vec![layer],
            manifest: Blob::new(OCI_MANIFEST, manifest.to_string()),
            architecture: String::new(),
        }
    }

    fn build(
        layer_sizes: &[usize],
        architecture: &str,
        manifest_type: &str,
        subject: Option<&Blob>,
    ) -> Self {
        let (layer_type, config_type) = if manifest_type == DOCKER_MANIFEST {
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.docker.container.image.v1+json",
            )
        } else {
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                "application/vnd.oci.image.config.v1+json",
            )
        };
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for (index, size) in layer_sizes.iter().enumerate() {
            let tar = tar_with_file(&format!("file-{index}"), &random_bytes(*size));
            diff_ids.push(Digest::sha256_of(&tar).to_string());
            layers.push(Blob::new(layer_type, gzip(&tar)));
        }
        let config = serde_json::json!({
            "architecture": architecture,
            "os": "linux",
            "config": { "Cmd": ["/file-0"] },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        });
        let config = Blob::new(config_type, config.to_string());
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": config.descriptor(),
            "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        });
        if let Some(subject) = subject {
            manifest["subject"] = subject.descriptor();
        }
        Image {
            config,
            layers,
            manifest: Blob::new(manifest_type, manifest.to_string()),
            architecture: architecture.to_owned(),
        }
    }

    /// The same layers under another config (a `created` time, history,
    /// labels, ...), with the manifest rebuilt over it.
    pub fn with_config(self, config: serde_json::Value) -> Self {
        let config = Blob::new(&self.config.media_type, config.to_string());
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&self.manifest.bytes).expect("a manifest this crate built");
        manifest["config"] = config.descriptor();
        Image {
            config,
            manifest: Blob::new(&self.manifest.media_type, manifest.to_string()),
            ..self
        }
    }

    /// Every blob the manifest needs: config first, then layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(&self.layers)
    }

    /// Writes the image straight into `store` (no registry in between),
    /// tagged when `tag` is given.
    pub async fn store_into(
        &self,
        store: &registry_storage::Store,
        name: &registry_core::RepositoryName,
        tag: Option<&registry_core::Tag>,
    ) -> Result<(), registry_storage::StorageError> {
        for blob in self.blobs() {
            store.put_small_blob(name, blob.bytes.clone()).await?;
        }
        let manifest = &self.manifest;
        store
            .put_manifest(name, &manifest.digest, manifest.bytes.clone(), tag, None)
            .await
    }
}

/// A multi-platform OCI index over images.
#[derive(Clone, Debug)]
pub struct Index {
    pub images: Vec<Image>,
    pub manifest: Blob,
}

impl Index {
    pub fn new(images: Vec<Image>) -> Self {
        let entries: Vec<_> = images
            .iter()
            .map(|image| {
                let mut descriptor = image.manifest.descriptor();
                descriptor["platform"] =
                    serde_json::json!({ "architecture": image.architecture, "os": "linux" });
                descriptor
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": entries,
        });
        Index {
            images,
            manifest: Blob::new(OCI_INDEX, manifest.to_string()),
        }
    }
}

fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_cksum();
    builder
        .append_data(&mut header, name, content)
        .expect("appending to an in-memory tar");
    builder.into_inner().expect("finishing an in-memory tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("compressing in memory");
    encoder.finish().expect("compressing in memory")
}
