//! `--svg`: a timeline per matrix row — one lane per key with a mark per provider call
//! (served ones colored by agent), shaded cooldown windows, and fallback markers.

use std::fmt::Write as _;

use crate::agent::{MarkKind, RowResult};
use crate::scenario::{Scenario, strategy_name};

const LEFT: f64 = 170.0;
const PLOT: f64 = 1000.0;
const LANE: f64 = 16.0;
const AGENT_COLORS: [&str; 8] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#bcbd22", "#8c564b", "#e377c2", "#7f7f7f",
];

/// Escapes text for XML content and attributes.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole SVG document.
pub fn render(scenario: &Scenario, seed: u64, rows: &[RowResult]) -> String {
    let keys = crate::agent::keys(scenario);
    let start = rows.iter().map(|r| r.timeline.start.0).min().unwrap_or(0);
    let end = rows
        .iter()
        .map(|r| r.timeline.end.0)
        .max()
        .unwrap_or(start)
        .max(start + 1);
    let span = (end - start) as f64;
    let x = |t: u64| LEFT + (t.saturating_sub(start)) as f64 / span * PLOT;
    let panel_height = (keys.len() as f64 + 1.0) * LANE + 34.0;
    let top = 70.0;
    let width = LEFT + PLOT + 20.0;
    let height = top + panel_height * rows.len() as f64 + 10.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0}" viewBox="0 0 {width} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r#"<title>credpool simulate: {} (seed {seed})</title>"#,
        esc(&scenario.name)
    );
    out.push_str(concat!(
        "<style>.served{stroke:none}.rl{fill:#d62728}.auth{fill:#6a3d9a}.err{fill:#ff7f0e}",
        ".cool{fill:#d62728;fill-opacity:0.12}.dead{fill:#333;fill-opacity:0.35}",
        ".fb{fill:#e6a700}.lane{fill:#f6f6f6}.axis{stroke:#bbb;stroke-width:0.5}</style>\n"
    ));
    let _ = writeln!(
        out,
        r#"<text x="10" y="18" font-size="14" font-weight="bold">credpool simulate — scenario {} — seed {seed} — {} min</text>"#,
        esc(&scenario.name),
        (end - start) / 60_000
    );
    legend(&mut out, scenario.agents as usize);
    for (p, row) in rows.iter().enumerate() {
        let y0 = top + panel_height * p as f64;
        let m = &row.metrics;
        let _ = writeln!(
            out,
            r#"<g class="panel"><text x="10" y="{:.1}" font-weight="bold">{} / {} / store {}: served {}, failed {}, 429s {}, fallbacks {}, replays {}</text>"#,
            y0 + 14.0,
            esc(&row.spec.policy_name),
            strategy_name(row.spec.strategy),
            if row.spec.shared { "shared" } else { "none" },
            m.served,
            m.failed,
            m.rate_limited,
            m.fallbacks,
            m.replays,
        );
        let lanes_top = y0 + 22.0;
        let lane_of = |key: &str| keys.iter().position(|(_, k)| k == key);
        for (i, (pool, key)) in keys.iter().enumerate() {
            let y = lanes_top + i as f64 * LANE;
            let _ = writeln!(
                out,
                r#"<rect class="lane" x="{LEFT}" y="{y:.1}" width="{PLOT}" height="{:.1}"/><text x="10" y="{:.1}">{}/{}</text>"#,
                LANE - 2.0,
                y + 11.0,
                esc(pool),
                esc(key)
            );
        }
        let fb_y = lanes_top + keys.len() as f64 * LANE;
        let _ = writeln!(
            out,
            r#"<text x="10" y="{:.1}">fallbacks</text>"#,
            fb_y + 11.0
        );
        // Minute ticks.
        let minutes = (end - start) / 60_000;
        let step = (minutes / 20).max(1);
        for minute in (0..=minutes).step_by(step as usize) {
            let tx = x(start + minute * 60_000);
            let _ = writeln!(
                out,
                r#"<line class="axis" x1="{tx:.1}" y1="{lanes_top:.1}" x2="{tx:.1}" y2="{:.1}"/><text x="{tx:.1}" y="{:.1}" font-size="9" fill="grey">{minute}m</text>"#,
                fb_y + LANE,
                fb_y + LANE + 9.0
            );
        }
        for w in &row.timeline.windows {
            let Some(lane) = lane_of(&w.key) else {
                continue;
            };
            let y = lanes_top + lane as f64 * LANE;
            let x0 = x(w.from.0);
            let (class, x1) = match w.until {
                Some(until) => ("cool", x(until.0.min(end))),
                None => ("dead", x(end)),
            };
            let _ = writeln!(
                out,
                r#"<rect class="{class}" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}"/>"#,
                (x1 - x0).max(1.0),
                LANE - 2.0
            );
        }
        for mark in &row.timeline.marks {
            let Some(lane) = lane_of(&mark.key) else {
                continue;
            };
            let y = lanes_top + lane as f64 * LANE;
            let mx = x(mark.at.0);
            match mark.kind {
                MarkKind::Served => {
                    let _ = writeln!(
                        out,
                        r#"<rect class="served" x="{mx:.1}" y="{:.1}" width="1.5" height="{:.1}" fill="{}"/>"#,
                        y + 2.0,
                        LANE - 6.0,
                        AGENT_COLORS[mark.agent % AGENT_COLORS.len()]
                    );
                }
                kind => {
                    let class = match kind {
                        MarkKind::RateLimited => "rl",
                        MarkKind::Auth => "auth",
                        _ => "err",
                    };
                    let _ = writeln!(
                        out,
                        r#"<circle class="{class}" cx="{mx:.1}" cy="{:.1}" r="2"/>"#,
                        y + LANE / 2.0 - 1.0
                    );
                }
            }
        }
        for f in &row.timeline.fallbacks {
            let fx = x(f.at.0);
            let fy = fb_y + 2.0;
            let _ = writeln!(
                out,
                r#"<polygon class="fb" points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}"><title>{} → {}</title></polygon>"#,
                fx - 3.0,
                fy,
                fx + 3.0,
                fy,
                fx,
                fy + 8.0,
                esc(&f.from),
                esc(&f.to)
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

fn legend(out: &mut String, agents: usize) {
    let y = 38.0;
    let mut lx = 10.0;
    for (agent, color) in AGENT_COLORS.iter().enumerate().take(agents) {
        let _ = write!(
            out,
            r#"<rect x="{lx}" y="{}" width="3" height="10" fill="{}"/><text x="{}" y="{}">agent {}</text>"#,
            y - 9.0,
            color,
            lx + 6.0,
            y,
            agent + 1
        );
        lx += 62.0;
    }
    let items = [
        (r##"<circle class="rl" cx="{x}" cy="{cy}" r="3"/>"##, "429"),
        (
            r##"<circle class="auth" cx="{x}" cy="{cy}" r="3"/>"##,
            "401",
        ),
        (r##"<circle class="err" cx="{x}" cy="{cy}" r="3"/>"##, "5xx"),
        (
            r##"<rect class="cool" x="{x0}" y="{y0}" width="14" height="10"/>"##,
            "cooldown",
        ),
        (
            r##"<rect class="dead" x="{x0}" y="{y0}" width="14" height="10"/>"##,
            "dead",
        ),
        (
            r##"<polygon class="fb" points="{x0},{y0} {x1},{y0} {x},{y1}"/>"##,
            "fallback",
        ),
    ];
    for (shape, label) in items {
        let shape = shape
            .replace("{x0}", &format!("{}", lx))
            .replace("{x1}", &format!("{}", lx + 8.0))
            .replace("{x}", &format!("{}", lx + 4.0))
            .replace("{cy}", &format!("{}", y - 4.0))
            .replace("{y0}", &format!("{}", y - 9.0))
            .replace("{y1}", &format!("{}", y));
        let _ = write!(
            out,
            "{shape}<text x=\"{}\" y=\"{y}\">{label}</text>",
            lx + 18.0
        );
        lx += 30.0 + 7.0 * label.len() as f64;
    }
    out.push('\n');
}
