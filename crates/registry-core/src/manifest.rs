//! Reading manifests. One reading of a body decides its kind (image,
//! index), the media type it is served as, and every descriptor it names;
//! validation of a push, serving, the referrers index and the collector's
//! reference walk all use that one result, so a manifest can never be
//! checked as one kind and collected as another. The manifest and index
//! types are `oci-spec`'s; Docker schema 2 manifests and lists share their
//! shape.

use std::collections::HashMap;

use crate::media_types::{DOCKER_SCHEMA1, OCI_INDEX, OCI_MANIFEST, is_image_manifest, is_index};
use crate::{Digest, ErrorCode, RegistryError};
use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

/// Manifests larger than this are refused.
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

/// What a manifest is, as far as the registry cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    /// One image or artifact: a config and layers.
    Image,
    /// A list of manifests (multi-platform images).
    Index,
    /// Docker schema 1, which older registries hold and Berth only reads.
    Schema1,
}

/// A descriptor a manifest names: where it stands in the manifest, the
/// content it points at, and the size it claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referenced {
    /// `config`, `layers[2]`, `manifests[0]`, `subject`, ...
    pub field: String,
    pub digest: Digest,
    pub size: Option<u64>,
}

/// Everything the registry needs to know of a manifest.
#[derive(Clone, Debug)]
pub struct ParsedManifest {
    /// The type the manifest is served as (`Content-Type`).
    pub media_type: String,
    pub kind: ManifestKind,
    /// The length of the manifest's bytes.
    pub size: u64,
    /// Config and layers, which must be blobs of the repository.
    pub blobs: Vec<Referenced>,
    /// Foreign (non-distributable) layers with `urls`: clients fetch them
    /// elsewhere, so they need not be pushed, but they stay when they were.
    pub foreign: Vec<Referenced>,
    /// Index entries, which must be manifests of the repository.
    pub manifests: Vec<Referenced>,
    pub subject: Option<Referenced>,
    /// `artifactType`, or for an image the config's media type, as the
    /// referrers API reports it.
    pub artifact_type: Option<String>,
    pub annotations: Option<HashMap<String, String>>,
}

impl ParsedManifest {
    /// Every digest the manifest names: blobs, children and subject.
    pub fn digests(&self) -> impl Iterator<Item = &Digest> {
        self.blobs
            .iter()
            .chain(&self.manifests)
            .chain(&self.subject)
            .map(|referenced| &referenced.digest)
    }
}

/// The fields of a body that decide its kind and name its content, read
/// leniently: the strict checks of a push come after.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    schema_version: Option<u64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    fs_layers: Option<Vec<Schema1Layer>>,
    annotations: Option<HashMap<String, String>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<u64>,
    urls: Option<Vec<String>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Schema1Layer {
    blob_sum: Option<String>,
}

/// Layer media types that may live elsewhere (at their `urls`).
const FOREIGN_LAYERS: &[&str] = &[
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

impl RawDescriptor {
    /// A layer that lives elsewhere (`urls`) and need not be pushed.
    fn is_foreign(&self) -> bool {
        let media_type = self.media_type.as_deref().unwrap_or("");
        FOREIGN_LAYERS.contains(&media_type)
            && self.urls.as_ref().is_some_and(|urls| !urls.is_empty())
    }
}

fn invalid(message: impl Into<String>) -> RegistryError {
    RegistryError::new(ErrorCode::ManifestInvalid, message)
}

impl Shape {
    fn read(body: &[u8]) -> Result<Shape, RegistryError> {
        serde_json::from_slice(body)
            .map_err(|error| invalid(format!("manifest is not a manifest JSON object: {error}")))
    }

    fn has_image_fields(&self) -> bool {
        self.config.is_some() || self.layers.is_some()
    }

    /// Its kind and served media type: the body's `mediaType` where it
    /// names a known kind, else what the fields say.
    fn kind(&self) -> Result<(ManifestKind, String), RegistryError> {
        if self.schema_version == Some(1) {
            return Ok((ManifestKind::Schema1, DOCKER_SCHEMA1[1].to_owned()));
        }
        let by_fields = match (self.has_image_fields(), self.manifests.is_some()) {
            (true, false) => Some((ManifestKind::Image, OCI_MANIFEST)),
            (false, true) | (true, true) => Some((ManifestKind::Index, OCI_INDEX)),
            (false, false) => None,
        };
        match (self.media_type.as_deref(), by_fields) {
            (Some(declared), _) if is_index(declared) => {
                Ok((ManifestKind::Index, declared.to_owned()))
            }
            (Some(declared), _) if is_image_manifest(declared) => {
                Ok((ManifestKind::Image, declared.to_owned()))
            }
            (Some(declared), Some((kind, _))) => Ok((kind, declared.to_owned())),
            (None, Some((kind, inferred))) => Ok((kind, inferred.to_owned())),
            (_, None) => Err(invalid(
                "manifest has neither config and layers (an image) nor manifests (an index)",
            )),
        }
    }
}

/// Reads a stored manifest: its kind, served type and every descriptor it
/// names. Lenient where the collector needs it to be: a body that names
/// both layers and manifests (which a push can no longer store) references
/// all of them, and digests of algorithms Berth never stores are skipped.
pub fn read(body: &[u8]) -> Result<ParsedManifest, RegistryError> {
    let shape = Shape::read(body)?;
    let (kind, media_type) = shape.kind()?;
    shape.into_parsed(kind, media_type, body.len(), BadDigests::Skip)
}

/// The media type a stored manifest is served as.
pub fn media_type_of(body: &[u8]) -> String {
    let shape = Shape::read(body).ok();
    match shape.as_ref().map(Shape::kind) {
        Some(Ok((_, media_type))) => media_type,
        _ => shape
            .and_then(|shape| shape.media_type)
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
    }
}

/// What becomes of a descriptor whose digest is missing or does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BadDigests {
    /// A push: refused, naming the descriptor.
    Refuse,
    /// A stored manifest: skipped, since Berth never stores such content.
    Skip,
}

impl Shape {
    fn into_parsed(
        self,
        kind: ManifestKind,
        media_type: String,
        size: usize,
        bad_digests: BadDigests,
    ) -> Result<ParsedManifest, RegistryError> {
        let referenced = |field: String, raw: &RawDescriptor| {
            let text = raw.digest.as_deref().unwrap_or("");
            match text.parse::<Digest>() {
                Ok(digest) => Ok(Some(Referenced {
                    field,
                    digest,
                    size: raw.size,
                })),
                Err(_) if bad_digests == BadDigests::Skip => Ok(None),
                Err(error) => Err(invalid(format!("{field}: {error}"))),
            }
        };
        let (mut blobs, mut foreign) = (Vec::new(), Vec::new());
        if let Some(config) = &self.config {
            blobs.extend(referenced("config".to_owned(), config)?);
        }
        for (index, layer) in self.layers.iter().flatten().enumerate() {
            let layer_reference = referenced(format!("layers[{index}]"), layer)?;
            if layer.is_foreign() {
                foreign.extend(layer_reference);
            } else {
                blobs.extend(layer_reference);
            }
        }
        for (index, layer) in self.fs_layers.iter().flatten().enumerate() {
            let raw = RawDescriptor {
                media_type: None,
                digest: layer.blob_sum.clone(),
                size: None,
                urls: None,
            };
            blobs.extend(referenced(format!("fsLayers[{index}]"), &raw)?);
        }
        let mut manifests = Vec::new();
        for (index, child) in self.manifests.iter().flatten().enumerate() {
            manifests.extend(referenced(format!("manifests[{index}]"), child)?);
        }
        let subject = match &self.subject {
            Some(subject) => referenced("subject".to_owned(), subject)?,
            None => None,
        };
        let artifact_type = self.artifact_type.or_else(|| match kind {
            ManifestKind::Image => self.config.and_then(|config| config.media_type),
            _ => None,
        });
        Ok(ParsedManifest {
            media_type,
            kind,
            size: size as u64,
            blobs,
            foreign,
            manifests,
            subject,
            artifact_type,
            annotations: self.annotations,
        })
    }
}

/// Parses and checks a pushed manifest. `content_type` is the request's
/// `Content-Type` without parameters. The result is what [`read`] makes of
/// the same bytes later: a body whose kind its bytes alone do not decide
/// is refused.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<ParsedManifest, RegistryError> {
    // Whatever stops the check (a repeated key, a number or a nesting it
    // cannot follow, bad syntax) refuses the body: the keys after that
    // point would go unchecked, and a Go client may read them.
    if let Err(error) = unique_keys::check(body) {
        return Err(invalid(error.to_string()));
    }
    let shape = Shape::read(body)?;
    if shape.schema_version != Some(2) {
        return Err(invalid(
            "only schemaVersion 2 manifests are accepted (Docker schema 1 is deprecated)",
        ));
    }
    if let Some(declared) = shape.media_type.as_deref()
        && DOCKER_SCHEMA1.contains(&declared)
    {
        return Err(invalid("Docker schema 1 manifests are not accepted"));
    }
    // Stored, it would name blobs whatever the kind: an index keeping
    // layers alive that no client ever reads.
    if shape.fs_layers.is_some() {
        return Err(invalid(
            "fsLayers is a Docker schema 1 field: a schemaVersion 2 manifest names its layers under layers",
        ));
    }
    if shape.has_image_fields() && shape.manifests.is_some() {
        return Err(invalid(
            "manifest has both config/layers and manifests: push an image manifest or an index, not both",
        ));
    }
    let (kind, media_type) = shape.kind()?;
    let generic = |value: &str| matches!(value, "application/json" | "application/octet-stream");
    if let Some(header) = content_type.filter(|value| !value.is_empty() && !generic(value))
        && header != media_type
    {
        let reason = match &shape.media_type {
            Some(_) => format!("mediaType {media_type:?} in the manifest"),
            None => format!("the manifest has no mediaType, so it is served as {media_type:?};"),
        };
        return Err(invalid(format!(
            "{reason} does not match Content-Type {header:?}"
        )));
    }
    match kind {
        ManifestKind::Image => {
            serde_json::from_slice::<ImageManifest>(body)
                .map_err(|error| invalid(format!("invalid image manifest: {error}")))?;
        }
        ManifestKind::Index => {
            serde_json::from_slice::<ImageIndex>(body)
                .map_err(|error| invalid(format!("invalid image index: {error}")))?;
        }
        ManifestKind::Schema1 => unreachable!("schema 1 was refused above"),
    }
    shape.into_parsed(kind, media_type, body.len(), BadDigests::Refuse)
}

/// The descriptor under which a manifest is listed by the referrers API.
pub fn referrer_descriptor(
    parsed: &ParsedManifest,
    digest: &Digest,
) -> Result<Bytes, RegistryError> {
    let oci_digest: oci_spec::image::Digest = digest
        .to_string()
        .parse()
        .map_err(|_| invalid("manifest digest cannot be described"))?;
    let mut descriptor = Descriptor::new(
        MediaType::from(parsed.media_type.as_str()),
        parsed.size,
        oci_digest,
    );
    descriptor.set_artifact_type(parsed.artifact_type.as_deref().map(MediaType::from));
    descriptor.set_annotations(parsed.annotations.clone());
    let json = serde_json::to_vec(&descriptor)
        .map_err(|error| invalid(format!("descriptor cannot be encoded: {error}")))?;
    Ok(Bytes::from(json))
}

mod unique_keys;

#[cfg(test)]
mod tests;
