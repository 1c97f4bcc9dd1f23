//! A node_exporter-like workload generator.
//!
//! Each simulated host exposes ~1,000 series in the proportions a real `node_exporter` on a
//! small Linux server shows (per-CPU mode counters, network and disk device counters, memory,
//! filesystem and vmstat gauges/counters, interrupts, Go runtime metrics, info series):
//!
//! | kind | share | how values move |
//! |---|---|---|
//! | constant (info, sizes, idle error counters) | ~30% | never change |
//! | integer counters (bytes, packets, operations) | ~35% | rate × 15 s with ±30% noise; many idle between bursts |
//! | 2-decimal counters (cpu seconds) | ~8% | like counters, rounded to 0.01 |
//! | integer gauges (memory, filesystem bytes) | ~15% | random walk in multiples of 4096 |
//! | 2-decimal gauges (load, temperatures) | ~4% | random walk, rounded to 0.01 |
//! | full-precision float gauges (durations, ratios) | ~8% | noisy, no rounding |
//!
//! Timestamps: every host has its own phase in the 15 s interval; every series of a host shares
//! the scrape's timestamp. 90% of scrapes land exactly on the grid (Prometheus aligns timestamps
//! within its 2 ms tolerance); the rest are off by up to ±25 ms.

use o11y_tsdb::labels::Label;
use o11y_tsdb::{Sample, SeriesSamples, WriteBatch};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Scrape interval in milliseconds.
pub const INTERVAL_MS: i64 = 15_000;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Constant,
    /// rate per second, decimals, probability of no change in a scrape.
    Counter {
        rate: f64,
        decimals: i32,
        idle: f64,
    },
    /// step size, multiple (quantum).
    GaugeWalk {
        step: f64,
        quantum: f64,
    },
    FloatNoise {
        mean: f64,
        sd: f64,
    },
}

struct SeriesState {
    labels: Vec<Label>,
    kind: Kind,
    value: f64,
}

/// The generator: a fixed set of series and their evolving values.
pub struct NodeExporterGen {
    series: Vec<SeriesState>,
    /// Host index of each series (series of a host are contiguous).
    host_of: Vec<u32>,
    host_phase: Vec<i64>,
    rng: SmallRng,
    start_ms: i64,
    round: i64,
}

fn l(name: &str, value: impl Into<String>) -> Label {
    Label {
        name: name.to_string(),
        value: value.into(),
    }
}

/// A counter with this rate, or a constant when the rate is 0.
fn counter(rate: f64, decimals: i32, idle: f64) -> Kind {
    if rate == 0.0 {
        Kind::Constant
    } else {
        Kind::Counter {
            rate,
            decimals,
            idle,
        }
    }
}

/// (metric name, extra labels, kind, initial value) for every series of one host.
fn host_template(rng: &mut SmallRng) -> Vec<(String, Vec<Label>, Kind, f64)> {
    let mut t: Vec<(String, Vec<Label>, Kind, f64)> = Vec::new();
    let mut push = |name: &str, extra: Vec<Label>, kind: Kind, v: f64| {
        t.push((name.to_string(), extra, kind, v))
    };
    let cpus = 8;
    let modes = [
        ("idle", 0.85),
        ("iowait", 0.01),
        ("irq", 0.0),
        ("nice", 0.0),
        ("softirq", 0.004),
        ("steal", 0.0),
        ("system", 0.04),
        ("user", 0.09),
    ];
    for c in 0..cpus {
        for (m, share) in modes {
            let kind = if share == 0.0 {
                Kind::Constant
            } else {
                Kind::Counter {
                    rate: share,
                    decimals: 2,
                    idle: 0.0,
                }
            };
            push(
                "node_cpu_seconds_total",
                vec![l("cpu", c.to_string()), l("mode", m)],
                kind,
                (rng.gen_range(1e4..1e6f64) * 100.0).round() / 100.0,
            );
        }
        push(
            "node_cpu_guest_seconds_total",
            vec![l("cpu", c.to_string()), l("mode", "user")],
            Kind::Constant,
            0.0,
        );
        push(
            "node_cpu_scaling_frequency_hertz",
            vec![l("cpu", c.to_string())],
            Kind::GaugeWalk {
                step: 1e8,
                quantum: 1e3,
            },
            2.4e9,
        );
    }
    let net_metrics = [
        ("receive_bytes", 5e4, 0.0),
        ("transmit_bytes", 3e4, 0.0),
        ("receive_packets", 60.0, 0.0),
        ("transmit_packets", 50.0, 0.0),
        ("receive_errs", 0.0, 1.0),
        ("transmit_errs", 0.0, 1.0),
        ("receive_drop", 0.01, 0.95),
        ("transmit_drop", 0.0, 1.0),
        ("receive_multicast", 0.1, 0.7),
        ("receive_fifo", 0.0, 1.0),
        ("transmit_fifo", 0.0, 1.0),
        ("receive_frame", 0.0, 1.0),
        ("transmit_colls", 0.0, 1.0),
        ("transmit_carrier", 0.0, 1.0),
        ("receive_compressed", 0.0, 1.0),
        ("transmit_compressed", 0.0, 1.0),
    ];
    for dev in ["eth0", "eth1", "lo", "docker0"] {
        for (m, rate, idle) in net_metrics {
            let kind = counter(rate, 0, idle);
            push(
                &format!("node_network_{m}_total"),
                vec![l("device", dev)],
                kind,
                if rate == 0.0 {
                    0.0
                } else {
                    rng.gen_range(1e6..1e10f64).round()
                },
            );
        }
        push(
            "node_network_up",
            vec![l("device", dev)],
            Kind::Constant,
            1.0,
        );
        push(
            "node_network_mtu_bytes",
            vec![l("device", dev)],
            Kind::Constant,
            1500.0,
        );
        push(
            "node_network_speed_bytes",
            vec![l("device", dev)],
            Kind::Constant,
            1.25e8,
        );
        push(
            "node_network_info",
            vec![
                l("device", dev),
                l(
                    "address",
                    format!("02:42:ac:11:00:{:02x}", rng.gen_range(0..255)),
                ),
                l("operstate", "up"),
            ],
            Kind::Constant,
            1.0,
        );
    }
    let disk_metrics = [
        ("reads_completed_total", 2.0, 0.6),
        ("writes_completed_total", 8.0, 0.2),
        ("read_bytes_total", 8192.0, 0.6),
        ("written_bytes_total", 65536.0, 0.2),
        ("reads_merged_total", 0.5, 0.8),
        ("writes_merged_total", 3.0, 0.3),
        ("read_time_seconds_total", 0.002, 0.6),
        ("write_time_seconds_total", 0.01, 0.2),
        ("io_time_seconds_total", 0.01, 0.2),
        ("io_time_weighted_seconds_total", 0.02, 0.2),
        ("discards_completed_total", 0.0, 1.0),
        ("discarded_sectors_total", 0.0, 1.0),
        ("flush_requests_total", 0.5, 0.5),
    ];
    for dev in ["sda", "sdb", "nvme0n1", "dm-0"] {
        for (m, rate, idle) in disk_metrics {
            let decimals = if m.contains("seconds") { 3 } else { 0 };
            let kind = counter(rate, decimals, idle);
            push(
                &format!("node_disk_{m}"),
                vec![l("device", dev)],
                kind,
                (rng.gen_range(1e3..1e7f64)).round(),
            );
        }
        push(
            "node_disk_io_now",
            vec![l("device", dev)],
            Kind::GaugeWalk {
                step: 1.0,
                quantum: 1.0,
            },
            0.0,
        );
        push(
            "node_disk_info",
            vec![l("device", dev), l("major", "8"), l("minor", "0")],
            Kind::Constant,
            1.0,
        );
    }
    for (mp, fs, dev) in [
        ("/", "ext4", "/dev/sda1"),
        ("/boot", "ext4", "/dev/sda2"),
        ("/home", "xfs", "/dev/sdb1"),
        ("/var/lib/docker", "overlay", "overlay"),
        ("/run", "tmpfs", "tmpfs"),
        ("/dev/shm", "tmpfs", "tmpfs"),
        ("/data", "xfs", "/dev/nvme0n1p1"),
        ("/run/user/1000", "tmpfs", "tmpfs"),
    ] {
        let ls = vec![l("device", dev), l("fstype", fs), l("mountpoint", mp)];
        let size = (rng.gen_range(1u64..500) << 30) as f64;
        push(
            "node_filesystem_size_bytes",
            ls.clone(),
            Kind::Constant,
            size,
        );
        push(
            "node_filesystem_avail_bytes",
            ls.clone(),
            Kind::GaugeWalk {
                step: 4096.0 * 64.0,
                quantum: 4096.0,
            },
            (size * 0.4 / 4096.0).round() * 4096.0,
        );
        push(
            "node_filesystem_free_bytes",
            ls.clone(),
            Kind::GaugeWalk {
                step: 4096.0 * 64.0,
                quantum: 4096.0,
            },
            (size * 0.45 / 4096.0).round() * 4096.0,
        );
        push("node_filesystem_files", ls.clone(), Kind::Constant, 6.5e6);
        push(
            "node_filesystem_files_free",
            ls.clone(),
            Kind::GaugeWalk {
                step: 8.0,
                quantum: 1.0,
            },
            6.1e6,
        );
        push("node_filesystem_readonly", ls.clone(), Kind::Constant, 0.0);
        push("node_filesystem_device_error", ls, Kind::Constant, 0.0);
    }
    for m in [
        "Active",
        "Active_anon",
        "Active_file",
        "AnonPages",
        "Buffers",
        "Cached",
        "Committed_AS",
        "Dirty",
        "Inactive",
        "Inactive_anon",
        "Inactive_file",
        "KReclaimable",
        "Mapped",
        "MemAvailable",
        "MemFree",
        "PageTables",
        "SReclaimable",
        "SUnreclaim",
        "Shmem",
        "Slab",
        "SwapCached",
        "SwapFree",
        "Writeback",
        "KernelStack",
        "Percpu",
    ] {
        push(
            &format!("node_memory_{m}_bytes"),
            vec![],
            Kind::GaugeWalk {
                step: 4096.0 * 256.0,
                quantum: 4096.0,
            },
            (rng.gen_range(1e6..8e9f64) / 4096.0).round() * 4096.0,
        );
    }
    for m in [
        "MemTotal",
        "SwapTotal",
        "CommitLimit",
        "HugePages_Total",
        "Hugepagesize",
        "VmallocTotal",
        "DirectMap4k",
        "DirectMap2M",
        "DirectMap1G",
        "HardwareCorrupted",
    ] {
        push(
            &format!("node_memory_{m}_bytes"),
            vec![],
            Kind::Constant,
            (rng.gen_range(0.0..3.2e10f64) / 4096.0).round() * 4096.0,
        );
    }
    for i in 0..90 {
        let (rate, idle) = match i % 5 {
            0 => (500.0, 0.0),
            1 => (20.0, 0.3),
            2 => (1.0, 0.7),
            3 => (0.0, 1.0),
            _ => (0.05, 0.95),
        };
        let kind = counter(rate, 0, idle);
        push(
            &format!("node_vmstat_stat_{i}"),
            vec![],
            kind,
            rng.gen_range(0.0..1e9f64).round(),
        );
    }
    for i in 0..70 {
        let (rate, idle) = if i % 3 == 0 {
            (10.0, 0.1)
        } else if i % 3 == 1 {
            (0.2, 0.8)
        } else {
            (0.0, 1.0)
        };
        let kind = counter(rate, 0, idle);
        push(
            &format!("node_netstat_stat_{i}"),
            vec![],
            kind,
            rng.gen_range(0.0..1e8f64).round(),
        );
    }
    for c in 0..cpus {
        for (i, ty) in [
            "LOC", "RES", "CAL", "TLB", "NMI", "PMI", "IWI", "MCE", "MCP", "THR", "DFR", "ERR",
            "MIS", "PIN", "NPI", "PIW", "SPU", "RTR", "HYP", "HRE", "HVS", "eth0-rx", "eth0-tx",
            "nvme0q1", "nvme0q2", "ahci", "i8042", "rtc0", "acpi", "timer", "ehci", "xhci", "snd",
            "virtio0", "virtio1", "virtio2",
        ]
        .iter()
        .enumerate()
        {
            let (rate, idle) = match i % 4 {
                0 => (250.0, 0.0),
                1 => (5.0, 0.4),
                _ => (0.0, 1.0),
            };
            let kind = counter(rate, 0, idle);
            push(
                "node_interrupts_total",
                vec![l("cpu", c.to_string()), l("type", *ty), l("devices", "")],
                kind,
                rng.gen_range(0.0..1e8f64).round(),
            );
        }
    }
    for col in [
        "arp",
        "bcache",
        "bonding",
        "btrfs",
        "conntrack",
        "cpu",
        "cpufreq",
        "diskstats",
        "dmi",
        "edac",
        "entropy",
        "fibrechannel",
        "filefd",
        "filesystem",
        "hwmon",
        "infiniband",
        "ipvs",
        "loadavg",
        "mdadm",
        "meminfo",
        "netclass",
        "netdev",
        "netstat",
        "nfs",
        "nfsd",
        "nvme",
        "os",
        "powersupplyclass",
        "pressure",
        "rapl",
        "schedstat",
        "selinux",
        "sockstat",
        "softnet",
        "stat",
        "tapestats",
        "textfile",
        "thermal_zone",
        "time",
        "timex",
        "udp_queues",
        "uname",
        "vmstat",
        "xfs",
        "zfs",
    ] {
        push(
            "node_scrape_collector_duration_seconds",
            vec![l("collector", col)],
            Kind::FloatNoise {
                mean: 0.002,
                sd: 0.0015,
            },
            0.002,
        );
        push(
            "node_scrape_collector_success",
            vec![l("collector", col)],
            Kind::Constant,
            1.0,
        );
    }
    for (i, s) in ["load1", "load5", "load15"].iter().enumerate() {
        push(
            &format!("node_{s}"),
            vec![],
            Kind::GaugeWalk {
                step: 0.05 / (i as f64 + 1.0),
                quantum: 0.01,
            },
            0.5,
        );
    }
    for z in 0..6 {
        push(
            "node_hwmon_temp_celsius",
            vec![
                l("chip", "platform_coretemp_0"),
                l("sensor", format!("temp{z}")),
            ],
            Kind::GaugeWalk {
                step: 1.0,
                quantum: 1.0,
            },
            45.0,
        );
        push(
            "node_hwmon_temp_crit_celsius",
            vec![
                l("chip", "platform_coretemp_0"),
                l("sensor", format!("temp{z}")),
            ],
            Kind::Constant,
            100.0,
        );
    }
    for q in ["0", "0.25", "0.5", "0.75", "1"] {
        push(
            "go_gc_duration_seconds",
            vec![l("quantile", q)],
            Kind::FloatNoise {
                mean: 4e-5,
                sd: 2e-5,
            },
            4e-5,
        );
    }
    for m in [
        "go_memstats_alloc_bytes",
        "go_memstats_heap_alloc_bytes",
        "go_memstats_heap_inuse_bytes",
        "go_memstats_heap_idle_bytes",
        "go_memstats_stack_inuse_bytes",
        "go_memstats_sys_bytes",
        "go_memstats_next_gc_bytes",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "go_goroutines",
        "go_threads",
        "process_open_fds",
    ] {
        push(
            m,
            vec![],
            Kind::GaugeWalk {
                step: 8192.0,
                quantum: 8.0,
            },
            rng.gen_range(1e3..3e7f64).round(),
        );
    }
    for m in [
        "go_memstats_alloc_bytes_total",
        "go_memstats_mallocs_total",
        "go_memstats_frees_total",
        "go_memstats_lookups_total",
    ] {
        push(
            m,
            vec![],
            Kind::Counter {
                rate: 2e4,
                decimals: 0,
                idle: 0.0,
            },
            rng.gen_range(1e6..1e9f64).round(),
        );
    }
    push(
        "process_cpu_seconds_total",
        vec![],
        Kind::Counter {
            rate: 0.01,
            decimals: 2,
            idle: 0.1,
        },
        1234.56,
    );
    push(
        "node_time_seconds",
        vec![],
        Kind::FloatNoise {
            mean: 1.7e9,
            sd: 0.0,
        },
        1.7e9,
    );
    for m in [
        "node_timex_offset_seconds",
        "node_timex_frequency_adjustment_ratio",
        "node_timex_estimated_error_seconds",
        "node_pressure_cpu_waiting_seconds_total",
        "node_entropy_available_bits",
    ] {
        push(
            m,
            vec![],
            Kind::FloatNoise {
                mean: 1e-3,
                sd: 1e-4,
            },
            1e-3,
        );
    }
    for info in [
        "node_uname_info",
        "node_os_info",
        "node_dmi_info",
        "node_exporter_build_info",
        "go_info",
        "node_selinux_enabled",
        "node_textfile_scrape_error",
        "node_boot_time_seconds",
        "node_os_version",
        "process_start_time_seconds",
        "process_max_fds",
        "node_filefd_maximum",
    ] {
        push(
            info,
            vec![],
            Kind::Constant,
            rng.gen_range(0.0..1e9f64).round(),
        );
    }
    t
}

impl NodeExporterGen {
    /// A fleet with at least `series` series (whole hosts), starting at `start_ms`.
    pub fn new(seed: u64, series: usize, start_ms: i64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut states = Vec::with_capacity(series);
        let mut host_of = Vec::with_capacity(series);
        let mut host_phase = Vec::new();
        let mut host = 0u32;
        while states.len() < series {
            let template = host_template(&mut rng);
            let instance = format!("host-{host:05}.dc{}.example.com:9100", host % 3);
            host_phase.push(rng.gen_range(0..INTERVAL_MS));
            for (name, extra, kind, v) in template {
                if states.len() >= series {
                    break;
                }
                let mut labels = vec![
                    l("__name__", name),
                    l("instance", instance.clone()),
                    l("job", "node"),
                ];
                labels.extend(extra.into_iter().filter(|x| !x.value.is_empty()));
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                states.push(SeriesState {
                    labels,
                    kind,
                    value: v,
                });
                host_of.push(host);
            }
            host += 1;
        }
        NodeExporterGen {
            series: states,
            host_of,
            host_phase,
            rng,
            start_ms,
            round: 0,
        }
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when there are no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Label sets of every series, in generation order.
    pub fn labels(&self) -> impl Iterator<Item = &[Label]> {
        self.series.iter().map(|s| s.labels.as_slice())
    }

    /// Advances one scrape round and returns its samples in batches of at most `batch_samples`
    /// series (one sample each), the way remote_write groups them.
    pub fn next_round(&mut self, batch_samples: usize) -> Vec<WriteBatch> {
        let base = self.start_ms + self.round * INTERVAL_MS;
        let host_ts: Vec<i64> = self
            .host_phase
            .iter()
            .map(|&p| {
                let jitter = if self.rng.gen_bool(0.1) {
                    self.rng.gen_range(-25..=25)
                } else {
                    0
                };
                base + p + jitter
            })
            .collect();
        let mut batches = Vec::new();
        let mut cur = WriteBatch::default();
        for (i, s) in self.series.iter_mut().enumerate() {
            let dt = INTERVAL_MS as f64 / 1000.0;
            match s.kind {
                Kind::Constant => {}
                Kind::Counter {
                    rate,
                    decimals,
                    idle,
                } => {
                    if self.round > 0 && !self.rng.gen_bool(idle) {
                        let inc = rate * dt * self.rng.gen_range(0.7..1.3) / (1.0 - idle).max(0.05);
                        let scale = 10f64.powi(decimals);
                        s.value =
                            ((s.value * scale).round() + (inc * scale).round().max(1.0)) / scale;
                    }
                }
                Kind::GaugeWalk { step, quantum } => {
                    if self.round > 0 {
                        let d = self.rng.gen_range(-step..=step);
                        let q = ((s.value + d) / quantum).round() * quantum;
                        s.value = if quantum < 1.0 {
                            (q * 100.0).round() / 100.0
                        } else {
                            q.max(0.0)
                        };
                    }
                }
                Kind::FloatNoise { mean, sd } => {
                    s.value = if sd == 0.0 {
                        mean + base as f64 / 1000.0 - 1.7e9
                    } else {
                        (mean + self.rng.gen_range(-sd..=sd)).abs()
                    };
                }
            }
            cur.series.push(SeriesSamples {
                labels: s.labels.clone(),
                samples: vec![Sample {
                    t: host_ts[self.host_of[i] as usize],
                    v: s.value,
                }],
            });
            if cur.series.len() >= batch_samples {
                batches.push(std::mem::take(&mut cur));
            }
        }
        if !cur.series.is_empty() {
            batches.push(cur);
        }
        self.round += 1;
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped_like_node_exporter() {
        let mut a = NodeExporterGen::new(7, 3000, 0);
        let mut b = NodeExporterGen::new(7, 3000, 0);
        assert_eq!(a.len(), 3000);
        let (ra, rb) = (a.next_round(2000), b.next_round(2000));
        assert_eq!(ra, rb);
        assert_eq!(ra.len(), 2);
        // Labels are sorted and unique within each series; series are unique.
        let mut seen = std::collections::HashSet::new();
        for s in ra.iter().flat_map(|b| &b.series) {
            assert!(s.labels.windows(2).all(|w| w[0].name < w[1].name));
            assert!(seen.insert(s.labels.clone()));
        }
        // Counters never decrease.
        let first: Vec<f64> = ra
            .iter()
            .flat_map(|b| &b.series)
            .map(|s| s.samples[0].v)
            .collect();
        let second: Vec<f64> = a
            .next_round(5000)
            .into_iter()
            .flat_map(|b| b.series)
            .map(|s| s.samples[0].v)
            .collect();
        for ((s, x), y) in a.series.iter().zip(&first).zip(&second) {
            if let Kind::Counter { .. } = s.kind {
                assert!(y >= x, "{:?}: {x} -> {y}", s.labels);
            }
        }
    }
}
