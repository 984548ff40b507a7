//! The rules between keys that a JSON Schema cannot say well (each a diagnostic at its key).

use super::*;

/// Rules a JSON Schema cannot say well: combinations of keys.
pub(super) fn semantic_checks(ctx: &Ctx<'_>, p: &PlatformConfig) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if p.argocd.is_some() && p.delivery != Delivery::Argocd {
        out.push(
            ctx.diag(
                "/argocd",
                "`argocd` settings are only read with `delivery: argocd`",
            )
            .help("set delivery: argocd, or remove the argocd block"),
        );
    }
    if p.backends.postgres.mode == PostgresMode::External && p.backends.postgres.external.is_none()
    {
        out.push(
            ctx.diag(
                "/backends/postgres/mode",
                "mode `external` needs `backends.postgres.external`",
            )
            .help("add external: {host: db.example.com, port: 5432}"),
        );
    }
    if let Some(a) = p.airflow() {
        if let Some(d) = &a.dags {
            if d.credentials.is_some() && d.ssh_key.is_some() {
                out.push(ctx.diag(
                    "/tools/airflow/dags/sshKey",
                    "give either `credentials` (HTTPS) or `sshKey`, not both",
                ));
            }
            if d.ssh_key.is_some() && d.repo.starts_with("http") {
                out.push(
                    ctx.diag(
                        "/tools/airflow/dags/repo",
                        "an SSH key needs an SSH repository URL",
                    )
                    .help("use git@host:org/repo.git or ssh://git@host/org/repo.git"),
                );
            }
        }
        if let Some(chart) = &a.chart {
            let supported = charts::versions(a.flavor);
            if !supported.contains(&chart.version) {
                let name = match a.flavor {
                    AirflowFlavor::Official => "the official Airflow chart",
                    AirflowFlavor::Community => "the community Airflow chart",
                };
                out.push(
                    ctx.diag(
                        "/tools/airflow/chart/version",
                        format!(
                            "{name} {} is not supported: mlplat builds values for versions {}",
                            chart.version, supported.text
                        ),
                    )
                    .help(format!(
                        "pin a version in that range (chart keys move between releases, and values for another version would be refused by the chart), or leave `chart` out for {}",
                        match a.flavor {
                            AirflowFlavor::Official => charts::OFFICIAL_CHART.2,
                            AirflowFlavor::Community => charts::COMMUNITY_CHART.2,
                        }
                    )),
                );
            }
        }
        if a.flavor == AirflowFlavor::Official && a.users.len() > 1 {
            out.push(
                ctx.diag(
                    "/tools/airflow/users/1",
                    "the official Airflow chart creates one user at install",
                )
                .help("keep one user here and add the others in Airflow, or use flavor: community"),
            );
        }
    }
    if let Some(m) = p.mlflow() {
        if m.replicas
            .unwrap_or_else(|| defaults::number("/tools/mlflow/replicas"))
            > 1
            && p.backends.artifacts.mode == ArtifactsMode::Pvc
        {
            out.push(
                ctx.diag("/tools/mlflow/replicas", "more than one MLflow replica needs artifacts outside a PVC")
                    .help("a ReadWriteOnce volume mounts on one node only: keep replicas: 1 with artifacts.mode: pvc"),
            );
        }
    }
    if let Some(j) = p.jupyterhub() {
        if j.auth.kind == HubAuthKind::Dummy && !j.auth.local_demo {
            out.push(
                ctx.diag(
                    "/tools/jupyterhub/auth/type",
                    "the dummy authenticator lets anyone in with any password",
                )
                .help("set auth.localDemo: true if this is a local demo, or use native or github"),
            );
        }
        if j.auth.kind == HubAuthKind::Github && j.auth.github.is_none() {
            out.push(
                ctx.diag("/tools/jupyterhub/auth/type", "auth type `github` needs `auth.github`")
                    .help("add github: {clientId: ..., clientSecret: {fromEnv: GITHUB_CLIENT_SECRET}, callbackUrl: https://<host>/hub/oauth_callback}"),
            );
        }
        if j.auth.kind != HubAuthKind::Dummy
            && j.auth.allowed_users.is_empty()
            && j.auth.admin_users.is_empty()
            && j.auth
                .github
                .as_ref()
                .is_none_or(|g| g.allowed_organizations.is_empty())
        {
            out.push(
                ctx.diag(
                    "/tools/jupyterhub/auth",
                    "nobody could log in: JupyterHub 5 admits only allowed users",
                )
                .help("list adminUsers or allowedUsers (or github.allowedOrganizations)"),
            );
        }
    }
    if p.secrets.mode == SecretMode::ExternalSecrets && p.secrets.external_secrets.is_none() {
        out.push(
            ctx.diag(
                "/secrets/mode",
                "mode `external-secrets` needs `secrets.externalSecrets`",
            )
            .help("add externalSecrets: {region: eu-west-1, roleArn: arn:aws:iam::123456789012:role/mlops-external-secrets}"),
        );
    }
    // Argo CD takes chart values inline only: the charts' secret values would land in out/.
    let chart_secrets = p.enabled(Tool::Jupyterhub)
        || p.tools
            .airflow
            .as_ref()
            .is_some_and(|a| p.enabled(Tool::Airflow) && a.flavor == AirflowFlavor::Community);
    if p.secrets.mode == SecretMode::ExternalSecrets
        && p.delivery == Delivery::Rendered
        && chart_secrets
    {
        out.push(
            ctx.diag(
                "/secrets/mode",
                "with `delivery: rendered` the charts' secret values (JupyterHub's keys, the community Airflow chart's keys) end up in the Secrets `helm template` writes to out/, which `external-secrets` forbids",
            )
            .help("use delivery: flux, whose HelmRelease reads them from a Secret"),
        );
    }
    if p.secrets.mode == SecretMode::ExternalSecrets
        && p.delivery == Delivery::Argocd
        && chart_secrets
    {
        out.push(
            ctx.diag(
                "/secrets/mode",
                "with `delivery: argocd` the charts' secret values (JupyterHub's keys, the community Airflow chart's keys) are written inline in out/, which `external-secrets` forbids",
            )
            .help("use delivery: flux, whose HelmRelease reads them from a Secret"),
        );
    }
    // Namespaces must not collide: each tool owns its namespace and what kustomize puts there.
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for Namespace {
        component,
        name: ns,
        pointer,
    } in namespaces(p)
    {
        if let Some(other) = seen.insert(ns.clone(), component) {
            out.push(ctx.diag(pointer, format!("namespace `{ns}` is also used by {other}")));
        }
    }
    out
}
