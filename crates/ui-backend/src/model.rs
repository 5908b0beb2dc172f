//! The documents the UI reads, parsed leniently: manifests and indexes of
//! both the OCI and Docker flavours, and image configs. A field that is
//! missing or odd is shown as absent rather than failing a page; the
//! registry already refused what is malformed on push.

use std::collections::BTreeMap;

use registry_core::media_types::is_index;

/// Reads `null` as the default. Registries accept `"annotations": null`
/// and the like; one such manifest must show, not fail its repository's
/// pages.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A manifest or an index: the union of the fields the UI shows.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Manifest {
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    #[serde(deserialize_with = "nullable")]
    pub layers: Vec<Descriptor>,
    #[serde(deserialize_with = "nullable")]
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    #[serde(deserialize_with = "nullable")]
    pub annotations: BTreeMap<String, String>,
}

/// A reference to content by digest.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Descriptor {
    #[serde(deserialize_with = "nullable")]
    pub media_type: String,
    #[serde(deserialize_with = "nullable")]
    pub digest: String,
    #[serde(deserialize_with = "nullable")]
    pub size: u64,
    pub platform: Option<Platform>,
    pub artifact_type: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub annotations: BTreeMap<String, String>,
}

/// The platform of an index entry.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Platform {
    #[serde(deserialize_with = "nullable")]
    pub architecture: String,
    #[serde(deserialize_with = "nullable")]
    pub os: String,
    pub variant: Option<String>,
    #[serde(rename = "os.version")]
    pub os_version: Option<String>,
}

/// What kind of thing a manifest is, for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Image,
    Index,
    Artifact,
}

/// Config media types of runnable images; anything else is an artifact.
const IMAGE_CONFIGS: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

impl Manifest {
    pub fn kind(&self, media_type: &str) -> Kind {
        if is_index(media_type) || (!self.manifests.is_empty() && self.config.is_none()) {
            return Kind::Index;
        }
        let runnable = self
            .config
            .as_ref()
            .is_some_and(|config| IMAGE_CONFIGS.contains(&config.media_type.as_str()));
        if self.artifact_type.is_none() && runnable {
            Kind::Image
        } else {
            Kind::Artifact
        }
    }

    /// Config plus layers: what pulling the image transfers.
    pub fn image_size(&self) -> u64 {
        self.config.as_ref().map_or(0, |config| config.size)
            + self.layers.iter().map(|layer| layer.size).sum::<u64>()
    }
}

/// An image config: what the UI shows of it.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    pub created: Option<String>,
    pub author: Option<String>,
    pub architecture: Option<String>,
    pub os: Option<String>,
    pub variant: Option<String>,
    pub config: Option<RunConfig>,
    #[serde(deserialize_with = "nullable")]
    pub history: Vec<HistoryEntry>,
}

/// How a container of the image runs.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RunConfig {
    pub user: Option<String>,
    pub env: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// One step of the build.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct HistoryEntry {
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub empty_layer: bool,
}

/// What a cosign-style tag (`sha256-<hex>.sig`) is attached to.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CosignTag {
    pub kind: AttachmentKind,
    pub subject_digest: String,
}

/// Signatures, SBOMs and attestations, however they are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentKind {
    Signature,
    Sbom,
    Attestation,
    Other,
}

impl AttachmentKind {
    /// The kind of a referrer, by its artifact type.
    pub fn of_artifact_type(artifact_type: &str) -> Self {
        let lower = artifact_type.to_ascii_lowercase();
        if lower.contains("sbom") || lower.contains("spdx") || lower.contains("cyclonedx") {
            AttachmentKind::Sbom
        } else if lower.contains("signature")
            || lower.contains("sigstore")
            || lower.contains("notary")
            || lower.contains("cosign")
        {
            AttachmentKind::Signature
        } else if lower.contains("attestation")
            || lower.contains("in-toto")
            || lower.contains("provenance")
            || lower.contains("vuln")
        {
            AttachmentKind::Attestation
        } else {
            AttachmentKind::Other
        }
    }
}

impl CosignTag {
    /// Reads `sha256-<64 hex>.sig` / `.att` / `.sbom`.
    pub fn parse(tag: &str) -> Option<Self> {
        let rest = tag.strip_prefix("sha256-")?;
        let (hex, suffix) = rest.split_once('.')?;
        let kind = match suffix {
            "sig" => AttachmentKind::Signature,
            "att" => AttachmentKind::Attestation,
            "sbom" => AttachmentKind::Sbom,
            _ => return None,
        };
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| CosignTag {
            kind,
            subject_digest: format!("sha256:{hex}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_tags_are_recognised_exactly() {
        let hex = "a".repeat(64);
        let sig = CosignTag::parse(&format!("sha256-{hex}.sig")).expect("a signature tag");
        assert_eq!(sig.kind, AttachmentKind::Signature);
        assert_eq!(sig.subject_digest, format!("sha256:{hex}"));
        assert_eq!(
            CosignTag::parse(&format!("sha256-{hex}.sbom")).map(|tag| tag.kind),
            Some(AttachmentKind::Sbom)
        );
        for not_cosign in [
            format!("sha256-{hex}.tar"),
            format!("sha256-{}.sig", "a".repeat(63)),
            format!("sha256-{}.sig", "A".repeat(64)),
            "v1.sig".to_owned(),
            format!("sha512-{hex}.sig"),
        ] {
            assert_eq!(CosignTag::parse(&not_cosign), None, "{not_cosign}");
        }
    }

    #[test]
    fn nulls_read_as_absent() {
        let manifest: Manifest = serde_json::from_str(
            r#"{"annotations":null,"layers":null,"manifests":null,"config":{"mediaType":null,"digest":"sha256:1","size":null,"annotations":null}}"#,
        )
        .expect("a manifest with nulls");
        assert!(manifest.annotations.is_empty() && manifest.layers.is_empty());
        assert_eq!(manifest.config.map(|config| config.size), Some(0));
        let config: ImageConfig =
            serde_json::from_str(r#"{"history":null}"#).expect("a config with nulls");
        assert!(config.history.is_empty());
        let step: HistoryEntry =
            serde_json::from_str(r#"{"empty_layer":null}"#).expect("a step with nulls");
        assert!(!step.empty_layer);
    }

    #[test]
    fn kinds_follow_media_type_and_config() {
        let image: Manifest = serde_json::from_str(
            r#"{"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1","size":2},"layers":[{"mediaType":"x","digest":"sha256:2","size":40}]}"#,
        )
        .expect("a manifest");
        assert_eq!(
            image.kind("application/vnd.oci.image.manifest.v1+json"),
            Kind::Image
        );
        assert_eq!(image.image_size(), 42);
        let artifact: Manifest = serde_json::from_str(
            r#"{"artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:1","size":2}}"#,
        )
        .expect("a manifest");
        assert_eq!(
            artifact.kind("application/vnd.oci.image.manifest.v1+json"),
            Kind::Artifact
        );
        assert_eq!(
            AttachmentKind::of_artifact_type(artifact.artifact_type.as_deref().unwrap_or("")),
            AttachmentKind::Sbom
        );
        let index: Manifest = serde_json::from_str(r#"{"manifests":[]}"#).expect("an index");
        assert_eq!(
            index.kind("application/vnd.oci.image.index.v1+json"),
            Kind::Index
        );
    }
}
