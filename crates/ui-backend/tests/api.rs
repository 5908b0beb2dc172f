//! The JSON API against real registry-api and auth-service on ephemeral
//! ports: who sees what, push dates, a multi-arch image with a missing
//! child, referrers and cosign-style tags, delete previews checked against
//! what a collection then frees, and the errors a person gets.

mod common;

use std::time::Duration;

use common::{ALICE, BOB, World, call, described_image};
use serde_json::{Value, json};
use test_support::{Image, Index, push_image, push_manifest};

#[tokio::test]
async fn log_in_and_errors_a_person_can_act_on() {
    let world = World::start().await;
    let (status, body) = world.get(ALICE, "session").await;
    assert_eq!((status, &body["user"]), (200, &json!("alice")), "{body}");
    assert_eq!(
        body["public_name"],
        world.registry.host(),
        "pull commands name the registry"
    );

    let (status, body) = world.get(("alice", "wrong"), "session").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "unauthorized");
    assert!(
        body["message"].as_str().unwrap_or("").contains("password"),
        "{body}"
    );

    let anonymous = world
        .http
        .get(format!("{}/api/v1/repositories", world.ui.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers().get("www-authenticate").is_none(),
        "no browser log-in dialog"
    );

    for (path, status, field) in [
        ("repositories?page=0", 400, "page"),
        ("repositories?per_page=100000", 400, "per_page"),
        ("repositories/team/app/tags?sort=colour", 400, "sort"),
        ("repositories/Team/tags", 400, "repository name"),
        (
            "repositories/team/app/tags/..bad/delete-preview",
            400,
            "tag",
        ),
        ("repositories/team/app/images/sha256:nothex", 400, "tag"),
        ("repositories/team/app/frobnicate", 404, "API path"),
        ("nothing-here", 404, "API path"),
    ] {
        let (got, body) = world.get(ALICE, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap_or("").contains(field),
            "{path}: the message names {field}: {body}"
        );
    }
    let (status, body) = world
        .call(reqwest::Method::POST, Some(ALICE), "repositories")
        .await;
    assert_eq!(status, 405, "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("POST"),
        "{body}"
    );
    let (status, body) = world.get(ALICE, "repositories/team/none/tags").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
}

#[tokio::test]
async fn every_response_is_locked_down() {
    let world = World::start().await;
    for path in [
        "/",
        "/repo/team/app",
        "/assets/app.js",
        "/api/v1/session",
        "/api/v1/nothing",
    ] {
        let response = world
            .http
            .get(format!("{}{path}", world.ui.url))
            .send()
            .await
            .expect("GET");
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().expect("ASCII");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    }
    let page = world
        .http
        .get(format!("{}/image/team/app:v1", world.ui.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("text/html")
    );
    let html = page.text().await.expect("HTML");
    assert!(
        !html.contains("<script>") && html.contains("/assets/"),
        "no inline script: {html}"
    );
    let health = world
        .http
        .get(format!("{}/healthz", world.ui.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn users_see_only_what_the_policy_lets_them_pull() {
    let world = World::start().await;
    let pusher = world.pusher();
    let base = &world.registry.url;
    push_image(&pusher, base, "team/app", "v1", &Image::random(1, 512)).await;
    push_image(&pusher, base, "secret/keys", "v1", &Image::random(1, 512)).await;

    let (_, alice) = world.get(ALICE, "repositories").await;
    let (_, bob) = world.get(BOB, "repositories").await;
    let names = |body: &Value| -> Vec<String> {
        body["repositories"]
            .as_array()
            .expect("repositories")
            .iter()
            .map(|row| row["name"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(names(&alice), ["secret/keys", "team/app"]);
    assert_eq!(names(&bob), ["team/app"], "bob never sees secret/keys");
    assert_eq!(bob["total"], 1);
    for path in [
        "repositories/secret/keys/tags",
        "repositories/secret/keys/images/v1",
        "repositories/secret/keys/tags/v1/delete-preview",
    ] {
        let (status, body) = world.get(BOB, path).await;
        assert!(matches!(status, 403 | 404), "{path}: {status} {body}");
    }
    // Bob may pull team/app but not delete in it: the registry says no.
    let (status, body) = world
        .call(
            reqwest::Method::DELETE,
            Some(BOB),
            "repositories/team/app/tags/v1",
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "forbidden");
    let (status, _) = world.get(ALICE, "repositories/team/app/images/v1").await;
    assert_eq!(status, 200, "the tag is still there");

    // registry-api's own catalog, page by page, skips what bob may not
    // pull without ever handing him an empty page before the end.
    for hidden in ["secret/a", "secret/b", "team-secret/x", "zeta/hidden"] {
        push_image(&pusher, base, hidden, "v1", &Image::random(1, 64)).await;
    }
    push_image(&pusher, base, "team/web", "v1", &Image::random(1, 64)).await;
    let mut pages = Vec::new();
    let mut next = Some("/v2/_catalog?n=1".to_owned());
    while let Some(path) = next.take() {
        let page = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .basic_auth(BOB.0, Some(BOB.1))
            .send()
            .await
            .expect("catalog");
        next = page.headers().get("link").map(|link| {
            link.to_str()
                .expect("text")
                .split(['<', '>'])
                .nth(1)
                .expect("target")
                .to_owned()
        });
        let body: Value = page.json().await.expect("JSON");
        pages.push(body["repositories"].clone());
    }
    assert_eq!(
        pages,
        [
            serde_json::json!(["team/app"]),
            serde_json::json!(["team/web"])
        ]
    );
}

#[tokio::test]
async fn catalog_search_and_pages_cover_the_whole_catalog() {
    let world = World::start().await;
    let image = Image::random(1, 256);
    for index in 0..23 {
        let name = if index % 2 == 0 {
            format!("apps/web-{index:02}")
        } else {
            format!("tools/cli-{index:02}")
        };
        world.push(&name, "latest", &image).await;
    }
    let (status, body) = world
        .get(ALICE, "repositories?q=WEB&per_page=5&page=3")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["total"], 12,
        "search is over the whole catalog, case-insensitive"
    );
    let rows = body["repositories"].as_array().expect("rows");
    let names: Vec<&str> = rows
        .iter()
        .map(|row| row["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["apps/web-20", "apps/web-22"]);
    assert_eq!(rows[0]["tag_count"], 1);
    assert!(
        rows[0]["last_pushed"]
            .as_str()
            .is_some_and(|time| time.ends_with('Z')),
        "{body}"
    );
    let (_, past_end) = world.get(ALICE, "repositories?page=99").await;
    assert_eq!(past_end["repositories"], json!([]));
    assert_eq!(past_end["total"], 23);
}

#[tokio::test]
async fn tags_sort_by_push_and_creation_and_size() {
    let world = World::start().await;
    let pusher = world.pusher();
    let base = &world.registry.url;
    // Pushed in the order old, new, middle; created in another order.
    let first = described_image("2020-01-01T00:00:00Z");
    let second = described_image("2024-01-01T00:00:00Z");
    let third = Image::random(3, 8192).with_config(json!({
        "architecture": "arm64", "os": "linux", "created": "2022-01-01T00:00:00Z",
        "rootfs": { "type": "layers", "diff_ids": [] },
    }));
    push_image(&pusher, base, "team/app", "old", &first).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    push_image(&pusher, base, "team/app", "new", &second).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    push_image(&pusher, base, "team/app", "middle", &third).await;

    let order = |body: &Value| -> Vec<String> {
        body["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|tag| tag["name"].as_str().expect("name").to_owned())
            .collect()
    };
    let (_, by_name) = world.get(ALICE, "repositories/team/app/tags").await;
    assert_eq!(order(&by_name), ["middle", "new", "old"]);
    let (_, pushed) = world
        .get(ALICE, "repositories/team/app/tags?sort=pushed")
        .await;
    assert_eq!(
        order(&pushed),
        ["middle", "new", "old"],
        "newest push first"
    );
    let (_, created) = world
        .get(ALICE, "repositories/team/app/tags?sort=created&order=asc")
        .await;
    assert_eq!(order(&created), ["old", "middle", "new"]);
    let (_, size) = world
        .get(ALICE, "repositories/team/app/tags?sort=size")
        .await;
    assert_eq!(
        order(&size)[0],
        "middle",
        "three 8 KiB layers are the biggest"
    );
    let (_, page) = world
        .get(
            ALICE,
            "repositories/team/app/tags?sort=pushed&per_page=1&page=2",
        )
        .await;
    assert_eq!(order(&page), ["new"]);
    assert_eq!(page["total"], 3);

    let row = &by_name["tags"][2];
    assert_eq!(row["digest"], first.manifest.digest.to_string());
    assert_eq!(row["kind"], "image");
    assert_eq!(row["created"], "2020-01-01T00:00:00Z");
    let expected_size =
        first.config.bytes.len() + first.layers.iter().map(|l| l.bytes.len()).sum::<usize>();
    assert_eq!(row["size"], expected_size as u64);
    // "pushed" is registry-api's Last-Modified of the tag.
    let head = world
        .pusher()
        .head(format!("{base}/v2/team/app/manifests/old"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("HEAD");
    let modified = head.headers()["last-modified"].to_str().expect("ASCII");
    let modified = httpdate::parse_http_date(modified).expect("an HTTP date");
    assert_eq!(
        row["pushed"],
        humantime::format_rfc3339_seconds(modified).to_string()
    );
    let by_digest = world
        .pusher()
        .head(format!(
            "{base}/v2/team/app/manifests/{}",
            first.manifest.digest
        ))
        .send()
        .await
        .expect("HEAD");
    assert!(
        by_digest.headers().get("last-modified").is_none(),
        "a digest has no push date"
    );
}

#[tokio::test]
async fn multi_arch_images_with_a_missing_child_still_show() {
    let world = World::start().await;
    let amd = described_image("2024-05-01T00:00:00Z");
    world.push_index_missing_arm("team/multi", "v1", &amd).await;

    let (status, page) = world.get(ALICE, "repositories/team/multi/images/v1").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["kind"], "index");
    let platforms = page["platforms"].as_array().expect("platforms");
    assert_eq!(platforms.len(), 2);
    assert_eq!(platforms[0]["architecture"], "amd64");
    assert_eq!(platforms[0]["missing"], false);
    assert_eq!(platforms[1]["missing"], true, "{page}");
    assert_eq!(
        page["size"], platforms[0]["size"],
        "the size counts what is there"
    );
    assert_eq!(
        page["created"],
        Value::Null,
        "an index's created is its platforms'"
    );

    let child = format!("repositories/team/multi/images/{}", amd.manifest.digest);
    let (status, image) = world.get(ALICE, &child).await;
    assert_eq!(status, 200, "{image}");
    assert_eq!(image["config"]["architecture"], "amd64");
    assert_eq!(
        image["config"]["env"],
        json!(["PATH=/usr/bin", "MODE=prod"])
    );
    assert_eq!(image["config"]["exposed_ports"], json!(["8080/tcp"]));
    assert_eq!(
        image["config"]["labels"]["org.opencontainers.image.source"], "<script>alert(1)</script>",
        "labels come as data, for the UI to show as text"
    );
    let steps: Vec<(&str, u64)> = image["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|step| {
            (
                step["created_by"].as_str().expect("step"),
                step["size"].as_u64().expect("size"),
            )
        })
        .collect();
    let layer = |index: usize| amd.layers[index].bytes.len() as u64;
    assert_eq!(
        steps,
        [
            ("COPY app /app", layer(1)),
            ("ENV MODE=prod", 0),
            ("ADD rootfs /", layer(0))
        ]
    );
    assert_eq!(image["layers"].as_array().map(Vec::len), Some(2));
    let public = world.registry.url.trim_start_matches("http://");
    assert_eq!(
        image["pull"]["by_digest"],
        format!("docker pull {public}/team/multi@{}", amd.manifest.digest)
    );
    let (_, tags) = world.get(ALICE, "repositories/team/multi/tags").await;
    let v1 = tags["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .find(|tag| tag["name"] == "v1")
        .cloned()
        .expect("v1");
    assert_eq!(v1["platforms"].as_array().map(Vec::len), Some(2), "{v1}");
}

#[tokio::test]
async fn signatures_show_as_referrers_and_cosign_tags_as_attachments() {
    let world = World::start().await;
    let pusher = world.pusher();
    let base = &world.registry.url;
    let image = Image::random(1, 1024);
    push_image(&pusher, base, "team/signed", "v1", &image).await;
    push_manifest(&pusher, base, "team/signed", "also-v1", &image.manifest).await;
    let sbom = Image::artifact("application/spdx+json", &image.manifest);
    push_image(
        &pusher,
        base,
        "team/signed",
        &sbom.manifest.digest.to_string(),
        &sbom,
    )
    .await;
    let cosign_tag = format!("sha256-{}.sig", image.manifest.digest.hex());
    let signature = Image::random(1, 64);
    push_image(&pusher, base, "team/signed", &cosign_tag, &signature).await;

    let (status, page) = world.get(ALICE, "repositories/team/signed/images/v1").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["tags"],
        json!(["also-v1", "v1"]),
        "the other tags on the digest"
    );
    let referrers = page["referrers"].as_array().expect("referrers");
    assert_eq!(referrers.len(), 1, "{page}");
    assert_eq!(referrers[0]["kind"], "sbom");
    assert_eq!(
        referrers[0]["manifests"][0]["digest"],
        sbom.manifest.digest.to_string()
    );
    assert_eq!(
        page["attachments"],
        json!([{ "kind": "signature", "tag": cosign_tag }])
    );

    let (_, tags) = world.get(ALICE, "repositories/team/signed/tags").await;
    let row = |name: &str| {
        tags["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .find(|tag| tag["name"] == name)
            .cloned()
            .expect(name)
    };
    assert_eq!(row("v1")["attachments"][0]["kind"], "signature");
    let sig = row(&cosign_tag);
    assert_eq!(sig["attachment"]["kind"], "signature");
    assert_eq!(sig["attachment"]["subject_tags"], json!(["also-v1", "v1"]));
    let (_, artifact) = world
        .get(
            ALICE,
            &format!("repositories/team/signed/images/{}", sbom.manifest.digest),
        )
        .await;
    assert_eq!(artifact["kind"], "artifact");
    assert_eq!(artifact["subject"], image.manifest.digest.to_string());
}

#[tokio::test]
async fn a_delete_untags_one_tag_and_its_preview_bounds_what_gc_frees() {
    let world = World::start().await;
    let pusher = world.pusher();
    let base = &world.registry.url;
    let shared = Image::random(2, 4096);
    push_image(&pusher, base, "team/app", "v1", &shared).await;
    push_manifest(&pusher, base, "team/app", "latest", &shared.manifest).await;
    let alone = Image::random(2, 16 * 1024);
    push_image(&pusher, base, "team/app", "solo", &alone).await;

    // Deleting v1 leaves latest on the same digest: nothing to free.
    let (status, preview) = world
        .get(ALICE, "repositories/team/app/tags/v1/delete-preview")
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["other_tags"], json!(["latest"]));
    assert_eq!(preview["freeable_bytes"], 0);
    let (status, deleted) = world
        .call(
            reqwest::Method::DELETE,
            Some(ALICE),
            "repositories/team/app/tags/v1",
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    let (_, latest) = world
        .get(ALICE, "repositories/team/app/images/latest")
        .await;
    assert_eq!(
        latest["digest"],
        shared.manifest.digest.to_string(),
        "the other tag stays"
    );
    let (_, tags) = world.get(ALICE, "repositories/team/app/tags").await;
    assert_eq!(tags["total"], 2, "v1 is gone at once: {tags}");

    // solo's blobs are its own: the preview names them all.
    let (_, preview) = world
        .get(ALICE, "repositories/team/app/tags/solo/delete-preview")
        .await;
    assert_eq!(preview["other_tags"], json!([]));
    assert_eq!(preview["upper_bound"], true);
    let expected = alone.manifest.bytes.len()
        + alone.config.bytes.len()
        + alone
            .layers
            .iter()
            .map(|layer| layer.bytes.len())
            .sum::<usize>();
    assert_eq!(preview["freeable_bytes"], expected as u64, "{preview}");
    let (status, _) = world
        .call(
            reqwest::Method::DELETE,
            Some(ALICE),
            "repositories/team/app/tags/solo",
        )
        .await;
    assert_eq!(status, 200);
    let report = world.collect(true).await;
    assert_eq!(
        report.bytes_freed, expected as u64,
        "the preview's bound is what the collection freed"
    );

    // The status page shows that collection.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (status, state) = world.get(ALICE, "status").await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["read_only"], false);
    assert_eq!(
        state["latest_gc"]["bytes_freed"], expected as u64,
        "{state}"
    );
    assert_eq!(state["gc_history"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn deleting_a_manifest_by_digest_names_every_tag_it_takes() {
    let world = World::start().await;
    let pusher = world.pusher();
    let base = &world.registry.url;
    let image = Image::random(1, 1024);
    push_image(&pusher, base, "team/app", "a", &image).await;
    push_manifest(&pusher, base, "team/app", "b", &image.manifest).await;
    let digest = image.manifest.digest.to_string();
    let (status, preview) = world
        .get(
            ALICE,
            &format!("repositories/team/app/manifests/{digest}/delete-preview"),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["deletes"], "manifest");
    assert_eq!(preview["other_tags"], json!(["a", "b"]));
    assert!(preview["freeable_bytes"].as_u64().unwrap_or(0) > 1024);
    let (status, _) = world
        .call(
            reqwest::Method::DELETE,
            Some(ALICE),
            &format!("repositories/team/app/manifests/{digest}"),
        )
        .await;
    assert_eq!(status, 200);
    let (_, tags) = world.get(ALICE, "repositories/team/app/tags").await;
    assert_eq!(tags["total"], 0, "{tags}");
}

#[tokio::test]
async fn a_read_only_window_shows_in_status_and_refuses_deletes_with_its_end() {
    let world = World::start().await;
    world.push("team/app", "v1", &Image::random(1, 256)).await;
    world.open_window("a test window").await;
    let (_, state) = world.get(ALICE, "status").await;
    assert_eq!(state["read_only"], true, "{state}");
    assert!(
        state["window"]["until"]
            .as_str()
            .is_some_and(|until| until.ends_with('Z')),
        "{state}"
    );
    let (status, body) = world
        .call(
            reqwest::Method::DELETE,
            Some(ALICE),
            "repositories/team/app/tags/v1",
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "read_only");
    assert!(
        body["message"].as_str().unwrap_or("").contains("until"),
        "{body}"
    );
    assert_eq!(state["window"]["reason"], "a test window");
}

#[tokio::test]
async fn a_registry_that_does_not_answer_is_named() {
    // `_dir` is bound so the store and the users' files outlive the test.
    let World {
        registry,
        ui,
        http,
        _dir,
        ..
    } = World::start().await;
    let registry_url = registry.url.clone();
    registry.stop().await;
    let (status, body) = call(
        &http,
        &ui.url,
        reqwest::Method::GET,
        Some(ALICE),
        "repositories",
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "registry_unreachable");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains(&registry_url[7..]),
        "{body}"
    );
    let health = http
        .get(format!("{}/healthz", ui.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(health.status(), 503);
}

#[tokio::test]
async fn one_browsers_bad_logins_lock_out_nobody_else() {
    let world = World::start().await;
    // Someone behind the edge guesses alice's password through the UI.
    let mut statuses = Vec::new();
    for guess in 0..12 {
        let wrong = format!("guess-{guess}");
        let (status, _) = world
            .call_from("198.51.100.7", ("alice", &wrong), "session")
            .await;
        statuses.push(status);
    }
    assert_eq!(
        statuses.last(),
        Some(&429),
        "the guessing browser is stopped: {statuses:?}"
    );
    let (_, refused) = world
        .call_from("198.51.100.7", ("alice", "guess-again"), "session")
        .await;
    assert_eq!(refused["error"], "too_many_requests", "{refused}");
    assert!(
        refused["retry_after"]
            .as_u64()
            .is_some_and(|seconds| seconds > 0),
        "{refused}"
    );
    // Alice, in her own browser, logs in at once, and so does bob.
    let (status, body) = world.call_from("198.51.100.8", ALICE, "session").await;
    assert_eq!(
        status, 200,
        "alice is not locked out by someone else: {body}"
    );
    let (status, body) = world.call_from("198.51.100.9", BOB, "repositories").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_stopped_client_learns_nothing_from_another_users_cache() {
    let world = World::start().await;
    world.push("team/app", "v1", &Image::random(1, 256)).await;
    // Alice browses; her lists are warm in ui-backend's caches.
    let (status, _) = world
        .call_from("198.51.100.21", ALICE, "repositories/team/app/tags")
        .await;
    assert_eq!(status, 200);
    // Someone else guesses her password until the registry stops them...
    for guess in 0..12 {
        let wrong = format!("guess-{guess}");
        world
            .call_from(
                "198.51.100.22",
                ("alice", &wrong),
                "repositories/team/app/tags",
            )
            .await;
    }
    // ...and then the right guess is refused too, not answered from her cache.
    let (status, body) = world
        .call_from("198.51.100.22", ALICE, "repositories/team/app/tags")
        .await;
    assert_eq!(status, 429, "the cache is no oracle: {body}");
    let (status, _) = world
        .call_from("198.51.100.21", ALICE, "repositories/team/app/tags")
        .await;
    assert_eq!(status, 200, "alice herself goes on");
}

#[tokio::test]
async fn a_manifest_with_null_fields_does_not_break_its_repository() {
    let world = World::start().await;
    let pusher = world.pusher();
    let base = &world.registry.url;
    push_image(&pusher, base, "team/odd", "fine", &Image::random(1, 256)).await;
    let image = Image::random(1, 256);
    for blob in image.blobs() {
        test_support::push_blob(&pusher, base, "team/odd", blob).await;
    }
    let mut manifest: Value = serde_json::from_slice(&image.manifest.bytes).expect("JSON");
    manifest["annotations"] = Value::Null;
    let odd = test_support::Blob::new(&image.manifest.media_type, manifest.to_string());
    push_manifest(&pusher, base, "team/odd", "nulls", &odd).await;
    let (status, tags) = world
        .get(ALICE, "repositories/team/odd/tags?sort=size")
        .await;
    assert_eq!(status, 200, "{tags}");
    assert_eq!(tags["total"], 2);
    let (status, preview) = world
        .get(ALICE, "repositories/team/odd/tags/nulls/delete-preview")
        .await;
    assert_eq!(status, 200, "{preview}");
}

#[tokio::test]
async fn deleting_an_index_child_names_the_tags_it_breaks() {
    let world = World::start().await;
    let pusher = world.pusher();
    let base = &world.registry.url;
    let (amd, arm) = (Image::random_for("amd64"), Image::random_for("arm64"));
    push_image(&pusher, base, "team/multi", "amd", &amd).await;
    push_image(
        &pusher,
        base,
        "team/multi",
        &arm.manifest.digest.to_string(),
        &arm,
    )
    .await;
    push_manifest(
        &pusher,
        base,
        "team/multi",
        "latest",
        &Index::new(vec![amd.clone(), arm]).manifest,
    )
    .await;
    let path = format!(
        "repositories/team/multi/manifests/{}/delete-preview",
        amd.manifest.digest
    );
    let (status, preview) = world.get(ALICE, &path).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["other_tags"], json!(["amd"]));
    assert_eq!(
        preview["used_by"],
        json!(["latest"]),
        "the index that lists it"
    );
    let (status, _) = world
        .call(
            reqwest::Method::DELETE,
            Some(ALICE),
            &format!("repositories/team/multi/manifests/{}", amd.manifest.digest),
        )
        .await;
    assert_eq!(status, 200);
    let (_, index) = world
        .get(ALICE, "repositories/team/multi/images/latest")
        .await;
    assert_eq!(
        index["platforms"][0]["missing"], true,
        "shown missing at once: {index}"
    );
}

#[tokio::test]
async fn auth_service_gone_is_not_called_a_read_only_window() {
    let world = World::start().await;
    let (status, _) = world.get(ALICE, "session").await;
    assert_eq!(status, 200);
    let World {
        auth,
        registry,
        ui,
        http,
        _dir,
        ..
    } = world;
    auth.stop().await;
    // Bob has not logged in yet, so the registry must ask auth-service.
    let (status, body) = call(
        &http,
        &ui.url,
        reqwest::Method::GET,
        Some(BOB),
        "repositories",
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    drop(registry);
}

#[tokio::test]
async fn image_pages_follow_blob_redirects_to_the_store() {
    let Some((_moto, storage)) = test_support::start_moto("berth-ui-redirect", "store").await
    else {
        return;
    };
    let world = World::start_on(Some(storage), Some(std::time::Duration::from_secs(60))).await;
    let image = described_image("2026-01-01T00:00:00Z");
    world.push("team/app", "v1", &image).await;
    let (status, page) = world.get(ALICE, "repositories/team/app/images/v1").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["config"]["architecture"], "amd64", "{page}");
    assert_eq!(
        page["config"]["env"],
        json!(["PATH=/usr/bin", "MODE=prod"]),
        "the config came from the store"
    );
}
