//! Proves the independent checkers of `tests/support` can fail: each fixture under
//! `tests/data/fixtures/validators/` is judged, and the test pins the outcome (Ok, or an Err that
//! names the object and the offending field).

mod support;

use std::path::PathBuf;

use serde_json::{Value, json};
use support::{
    kubernetes_validate, kubernetes_validate_with, kustomize_build, load_yaml_file, validate_all,
    validate_custom_resources,
};

fn fixture_path(name: &str) -> PathBuf {
    support::repo_root()
        .join("tests/data/fixtures/validators")
        .join(name)
}

fn fixture(name: &str) -> Vec<Value> {
    let docs = load_yaml_file(&fixture_path(name));
    assert!(!docs.is_empty(), "{name} has no documents");
    docs
}

/// The single document of a values fixture.
fn values(name: &str) -> Value {
    let mut docs = fixture(name);
    assert_eq!(docs.len(), 1, "{name} must hold one document");
    docs.remove(0)
}

#[track_caller]
fn assert_ok(result: Result<(), String>) {
    if let Err(e) = result {
        panic!("expected Ok, got Err:\n{e}");
    }
}

/// Asserts an Err that mentions every one of `needles`; returns the message.
#[track_caller]
fn assert_err(result: Result<(), String>, needles: &[&str]) -> String {
    let message = match result {
        Ok(()) => panic!("expected an Err mentioning {needles:?}, got Ok"),
        Err(message) => message,
    };
    for needle in needles {
        assert!(
            message.contains(needle),
            "the Err does not mention `{needle}`:\n{message}"
        );
    }
    message
}

// --- built-in kinds: kubernetes-validate --------------------------------------------------------

#[test]
fn builtin_kinds_that_are_valid_pass() {
    let objs = fixture("builtin-valid.yaml");
    assert_eq!(objs.len(), 4);
    assert_ok(kubernetes_validate(&objs));
}

#[test]
fn an_unknown_field_in_a_container_fails() {
    let message = assert_err(
        kubernetes_validate(&fixture("builtin-unknown-field.yaml")),
        &[
            "Deployment ml/web",
            "spec.template.spec.containers.0",
            "imagePullPolicyy",
        ],
    );
    assert!(
        !message.contains("Namespace"),
        "only the Deployment is wrong:\n{message}"
    );
}

#[test]
fn a_missing_required_field_fails() {
    assert_err(
        kubernetes_validate(&fixture("builtin-missing-required.yaml")),
        &[
            "Service ml/web",
            "spec.ports.0",
            "'port' is a required property",
        ],
    );
}

#[test]
fn a_kind_kubernetes_does_not_have_fails_instead_of_warning() {
    assert_err(
        kubernetes_validate(&fixture("builtin-unknown-kind.yaml")),
        &["Deploymnt ml/web", "no schema", "apps/v1"],
    );
}

#[test]
fn an_object_without_a_name_fails_before_the_tool_runs() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "ml"}});
    assert_err(kubernetes_validate(&[obj]), &["ConfigMap", "metadata.name"]);
}

#[test]
fn a_missing_validator_is_an_error_that_says_how_to_install_it() {
    assert_err(
        kubernetes_validate_with(
            "kubernetes-validate-not-installed",
            &fixture("builtin-valid.yaml"),
        ),
        &["pip install kubernetes-validate"],
    );
}

// --- custom resources: CRD schemas -------------------------------------------------------------

#[test]
fn flux_helmrepository_and_helmrelease_that_are_valid_pass() {
    let objs = fixture("flux-valid.yaml");
    assert_eq!(objs.len(), 2);
    assert_ok(validate_custom_resources(&objs));
}

#[test]
fn a_typo_in_a_helmrelease_fails() {
    assert_err(
        validate_custom_resources(&fixture("flux-helmrelease-typo.yaml")),
        &["HelmRelease ml/jupyterhub", "/spec", "intervall"],
    );
}

#[test]
fn a_wrong_type_in_a_helmrelease_fails() {
    assert_err(
        validate_custom_resources(&fixture("flux-helmrelease-wrong-type.yaml")),
        &["HelmRelease ml/jupyterhub", "/spec/maxHistory", "integer"],
    );
}

#[test]
fn a_helmrelease_without_chart_or_chart_ref_fails_its_cel_rule() {
    assert_err(
        validate_custom_resources(&fixture("flux-helmrelease-no-chart.yaml")),
        &[
            "HelmRelease ml/jupyterhub",
            "either chart or chartRef must be set",
        ],
    );
}

#[test]
fn unknown_metadata_fields_and_bad_names_of_custom_resources_fail() {
    let mut objs = fixture("flux-valid.yaml");
    objs[1]["metadata"]["labelz"] = json!({"a": "b"});
    objs[0]["metadata"]["name"] = json!("JupyterHub");
    assert_err(
        validate_custom_resources(&objs),
        &[
            "HelmRelease ml/jupyterhub",
            "labelz",
            "HelmRepository flux-system/JupyterHub",
            "/metadata/name",
        ],
    );
}

#[test]
fn values_of_a_helmrelease_are_free_form() {
    let mut objs = fixture("flux-valid.yaml");
    objs[1]["spec"]["values"] = json!({"whatever": {"nested": [1, "two", null]}});
    assert_ok(validate_custom_resources(&objs));
}

#[test]
fn an_argo_cd_application_that_is_valid_passes() {
    assert_ok(validate_custom_resources(&fixture(
        "argocd-application-valid.yaml",
    )));
}

#[test]
fn an_argo_cd_application_with_a_typo_and_no_project_fails() {
    assert_err(
        validate_custom_resources(&fixture("argocd-application-invalid.yaml")),
        &[
            "Application argocd/mlflow",
            "/spec/source",
            "targetRevison",
            "\"project\" is a required property",
        ],
    );
}

#[test]
fn an_external_secret_that_is_valid_passes() {
    assert_ok(validate_custom_resources(&fixture(
        "externalsecret-valid.yaml",
    )));
}

#[test]
fn an_external_secret_with_a_bad_store_kind_fails() {
    assert_err(
        validate_custom_resources(&fixture("externalsecret-invalid.yaml")),
        &[
            "ExternalSecret ml/mlflow-db",
            "/spec/secretStoreRef/kind",
            "AwsSecretsManager",
        ],
    );
}

#[test]
fn an_api_version_the_crd_no_longer_serves_fails() {
    assert_err(
        validate_custom_resources(&fixture("externalsecret-v1beta1.yaml")),
        &[
            "ExternalSecret ml/mlflow-db",
            "external-secrets.io/v1beta1",
            "not served",
        ],
    );
}

#[test]
fn a_kind_missing_from_a_known_group_fails() {
    let obj = json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmChart",
        "metadata": {"name": "x", "namespace": "ml"},
    });
    assert_err(
        validate_custom_resources(&[obj]),
        &["HelmChart ml/x", "no CRD for kind `HelmChart`"],
    );
}

// --- everything together ------------------------------------------------------------------------

#[test]
fn validate_all_judges_built_in_kinds_and_custom_resources_together() {
    let mut objs = fixture("builtin-valid.yaml");
    for name in [
        "flux-valid.yaml",
        "argocd-application-valid.yaml",
        "externalsecret-valid.yaml",
    ] {
        objs.extend(fixture(name));
    }
    assert_ok(validate_all(&objs));
}

#[test]
fn validate_all_reports_failures_of_both_kinds() {
    let mut objs = fixture("builtin-unknown-field.yaml");
    objs.extend(fixture("flux-helmrelease-typo.yaml"));
    assert_err(validate_all(&objs), &["imagePullPolicyy", "intervall"]);
}

#[test]
fn validate_all_rejects_an_unknown_api_group() {
    let mut objs = fixture("builtin-valid.yaml");
    objs.extend(fixture("unknown-group.yaml"));
    assert_err(
        validate_all(&objs),
        &["ServiceMonitor ml/mlflow", "monitoring.coreos.com/v1"],
    );
}

// --- kustomize ----------------------------------------------------------------------------------

#[test]
fn a_kustomization_builds_and_its_output_validates() {
    let objs = kustomize_build(&fixture_path("kustomize"));
    let names: Vec<String> = objs.iter().map(support::describe).collect();
    assert_eq!(
        names,
        [
            "Namespace ml",
            "ConfigMap ml/mlflow",
            "HelmRelease ml/jupyterhub"
        ]
    );
    for obj in &objs {
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/part-of"],
            "mlplat"
        );
    }
    assert_ok(validate_all(&objs));
}

#[test]
#[should_panic(expected = "kubectl kustomize")]
fn a_directory_without_a_kustomization_panics_with_kubectls_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    kustomize_build(dir.path());
}

// --- chart values: the published charts, through Helm ----------------------------------------

/// Helm's verdict on values fixture `name` for the published archive of `chart` `version`.
fn helm_on(name: &str, chart: &str, version: &str) -> Result<(), String> {
    let archive = support::published::archive(chart, version)
        .expect("archive")
        .expect("at hand");
    support::published::check_schema(&[(archive, values(name))]).remove(0)
}

#[test]
fn chart_values_helm_accepts_pass() {
    assert_ok(helm_on("airflow-values-valid.yaml", "airflow", "1.22.0"));
    // Helm coalesces the chart's defaults: an override needs nothing else.
    assert_ok(helm_on(
        "jupyterhub-values-override.yaml",
        "jupyterhub",
        "4.4.0",
    ));
    assert_ok(helm_on(
        "jupyterhub-values-full.yaml",
        "jupyterhub",
        "4.4.0",
    ));
}

#[test]
fn chart_values_helm_refuses_fail_naming_the_place() {
    assert_err(
        helm_on("airflow-values-invalid.yaml", "airflow", "1.22.0"),
        &[
            "/dags/gitSync",
            "repoo",
            "/dags/gitSync/depth",
            "/env/0",
            "value",
        ],
    );
    assert_err(
        helm_on("jupyterhub-values-invalid.yaml", "jupyterhub", "4.4.0"),
        &["/singleuser/memory", "limits", "/cull/timeout"],
    );
}

#[test]
fn a_chart_version_with_no_archive_at_hand_is_named_not_skipped() {
    // Listed: known to be missing, and so not inflated.
    assert_eq!(support::published::archive("airflow", "1.18.0"), Ok(None));
    // Not listed: an error saying how to get it.
    let err = support::published::archive("airflow", "1.99.0").expect_err("not at hand");
    assert!(
        err.contains("helm pull airflow --repo https://airflow.apache.org --version 1.99.0"),
        "{err}"
    );
}
