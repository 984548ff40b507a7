//! The charts mlplat installs: each tool's default chart (repository, name, version) and, for
//! Airflow, the chart versions whose values mlplat knows how to build. The config checks a
//! chart version against these; the tools build their values for them.

use super::AirflowFlavor;

/// JupyterHub's chart, zero-to-jupyterhub.
pub const JUPYTERHUB_CHART: (&str, &str, &str) =
    ("https://hub.jupyter.org/helm-chart/", "jupyterhub", "4.4.0");
/// Airflow's charts: the official Apache chart (the default flavor) and airflow-helm's.
pub const OFFICIAL_CHART: (&str, &str, &str) = ("https://airflow.apache.org", "airflow", "1.22.0");
pub const COMMUNITY_CHART: (&str, &str, &str) =
    ("https://airflow-helm.github.io/charts", "airflow", "8.9.0");

/// The official chart versions mlplat builds values for, read off the chart's history: 1.18.0
/// is the first release with Airflow 3's API secret key (`apiSecretKey*`, beside `jwtSecret*`
/// and `ingress.apiServer`, which came with 1.17.0); 1.22 is the newest. A later minor release
/// may rename keys again (the chart's next major one will), so it is refused until mlplat knows
/// its keys.
pub const OFFICIAL_VERSIONS: Versions = Versions {
    from: (1, 18, 0),
    below: (1, 23, 0),
    text: "1.18.0 to 1.22.x",
};
/// The community chart versions: the 8.x line, whose keys the seed used (8.9.0 is its last
/// release).
pub const COMMUNITY_VERSIONS: Versions = Versions {
    from: (8, 0, 0),
    below: (9, 0, 0),
    text: "8.x",
};

/// A range of chart versions, `from` included, `below` not.
#[derive(Debug, Clone, Copy)]
pub struct Versions {
    pub from: (u64, u64, u64),
    pub below: (u64, u64, u64),
    /// The range as the README and the errors say it.
    pub text: &'static str,
}

impl Versions {
    /// Whether `version` (`MAJOR.MINOR.PATCH`, with an optional `-pre` or `+build` part, which
    /// is not compared) is in the range.
    pub fn contains(&self, version: &str) -> bool {
        parse_version(version).is_some_and(|v| self.from <= v && v < self.below)
    }
}

/// The supported versions of a flavor's chart.
pub fn versions(flavor: AirflowFlavor) -> Versions {
    match flavor {
        AirflowFlavor::Official => OFFICIAL_VERSIONS,
        AirflowFlavor::Community => COMMUNITY_VERSIONS,
    }
}

pub fn parse_version(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let v = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_versions_are_a_half_open_range() {
        for v in ["1.18.0", "1.19.3", "1.22.0", "1.22.7-rc1"] {
            assert!(OFFICIAL_VERSIONS.contains(v), "{v}");
        }
        for v in ["1.17.0", "1.23.0", "2.0.0", "1.22", "1.x.0", "1.22.0.1"] {
            assert!(!OFFICIAL_VERSIONS.contains(v), "{v}");
        }
        assert!(COMMUNITY_VERSIONS.contains("8.9.0") && !COMMUNITY_VERSIONS.contains("7.16.0"));
    }
}
