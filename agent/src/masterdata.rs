//! Master data: workers, bundles and process routes, imported from CSV.
//!
//! Parsing and validation are pure ([`parse`]); [`import`] writes a parsed file in one
//! transaction, so a file with any bad line changes nothing (all-or-nothing). Codes in the
//! file (badges, bundle tickets) are decoded with the same decoders as scans, so what is
//! stored is exactly the key a scan will produce.
//!
//! | file | header |
//! |---|---|
//! | workers | `id,name,team,badge` — badge as the card prints or types it (`W:E1042`, `3547123456`) |
//! | bundles | `trace_code,order,style,colour,size,quantity` — trace_code as printed on the ticket |
//! | processes | `order,process,step` — the route of an order, step 1, 2, … |
//!
//! Worker names stay in the `workers` table on this PC (ZH-3.3); records carry worker ids.

use bobbin_codes::{DecodeConfig, Scheme};
use rusqlite::{params, Transaction};
use std::collections::HashMap;

/// Which master-data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Workers: id, name, team, badge.
    Workers,
    /// Bundles: trace code, order, style, colour, size, quantity.
    Bundles,
    /// Process routes: order, process, step.
    Processes,
}

impl Kind {
    fn header(self) -> &'static [&'static str] {
        match self {
            Kind::Workers => &["id", "name", "team", "badge"],
            Kind::Bundles => &["trace_code", "order", "style", "colour", "size", "quantity"],
            Kind::Processes => &["order", "process", "step"],
        }
    }
}

/// A problem with one line of a file (line numbers count the header as line 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct LineError {
    /// The 1-based line number.
    pub line: u64,
    /// What is wrong, naming the column.
    pub problem: String,
}

/// One parsed row, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// A worker.
    Worker {
        /// Worker id (goes into records).
        id: String,
        /// Name (stays on this PC).
        name: String,
        /// Team.
        team: Option<String>,
        /// The decoded badge key.
        badge: Option<String>,
    },
    /// A bundle.
    Bundle {
        /// The decoded trace key of the ticket.
        trace_key: String,
        /// Order number.
        order: String,
        /// Style.
        style: Option<String>,
        /// Colour.
        colour: Option<String>,
        /// Size.
        size: Option<String>,
        /// Pieces in the bundle.
        quantity: u32,
    },
    /// One step of an order's process route.
    Process {
        /// Order number.
        order: String,
        /// Process name or id.
        process: String,
        /// Position in the route, from 1.
        step: u32,
    },
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn required(line: u64, col: &str, s: &str) -> Result<String, LineError> {
    opt(s).ok_or_else(|| LineError {
        line,
        problem: format!("{col}: must not be empty"),
    })
}

/// Parses and validates a whole file. Returns every row, or the first bad line.
pub fn parse(kind: Kind, text: &str, codes: &DecodeConfig) -> Result<Vec<Row>, LineError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| LineError {
            line: 1,
            problem: format!("header: {e}"),
        })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let want = kind.header();
    if header != want {
        return Err(LineError {
            line: 1,
            problem: format!(
                "header must be `{}`, found `{}`",
                want.join(","),
                header.join(",")
            ),
        });
    }
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| LineError {
            line: e.position().map_or(0, |p| p.line()),
            problem: e.to_string(),
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let f = |i: usize| rec.get(i).unwrap_or("");
        let row = match kind {
            Kind::Workers => {
                let id = required(line, "id", f(0))?;
                check_id(line, "id", &id)?;
                let badge = match opt(f(3)) {
                    None => None,
                    Some(text) => Some(decode_as(line, "badge", &text, codes, true)?),
                };
                Row::Worker {
                    name: required(line, "name", f(1))?,
                    team: opt(f(2)),
                    id,
                    badge,
                }
            }
            Kind::Bundles => {
                let code = required(line, "trace_code", f(0))?;
                let quantity = f(5).trim().parse::<u32>().map_err(|_| LineError {
                    line,
                    problem: format!("quantity: {:?} is not a whole number of pieces", f(5)),
                })?;
                Row::Bundle {
                    trace_key: decode_as(line, "trace_code", &code, codes, false)?,
                    order: required(line, "order", f(1))?,
                    style: opt(f(2)),
                    colour: opt(f(3)),
                    size: opt(f(4)),
                    quantity,
                }
            }
            Kind::Processes => {
                let step = f(2).trim().parse::<u32>().ok().filter(|s| *s >= 1);
                Row::Process {
                    order: required(line, "order", f(0))?,
                    process: required(line, "process", f(1))?,
                    step: step.ok_or_else(|| LineError {
                        line,
                        problem: format!("step: {:?} is not a whole number from 1", f(2)),
                    })?,
                }
            }
        };
        let key = match &row {
            Row::Worker { id, .. } => format!("worker id {id:?}"),
            Row::Bundle { trace_key, .. } => format!("bundle {trace_key:?}"),
            Row::Process { order, process, .. } => {
                format!("process {process:?} of order {order:?}")
            }
        };
        if let Some(first) = seen.insert(key.clone(), line) {
            return Err(LineError {
                line,
                problem: format!("{key} already on line {first}"),
            });
        }
        if let Row::Worker { badge: Some(b), .. } = &row {
            if let Some(first) = seen.insert(format!("badge {b}"), line) {
                return Err(LineError {
                    line,
                    problem: format!("badge: {b:?} already on line {first}"),
                });
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

fn check_id(line: u64, col: &str, id: &str) -> Result<(), LineError> {
    if id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        Ok(())
    } else {
        Err(LineError {
            line,
            problem: format!("{col}: {id:?} is not a valid id (letters, digits, '.', '_', '-')"),
        })
    }
}

/// Decodes a code from the file; badges must decode as badges, tickets as anything but a
/// control code.
fn decode_as(
    line: u64,
    col: &str,
    text: &str,
    codes: &DecodeConfig,
    badge: bool,
) -> Result<String, LineError> {
    let d = bobbin_codes::decode(text.as_bytes(), None, codes).map_err(|e| LineError {
        line,
        problem: format!("{col}: {e}"),
    })?;
    let is_badge = matches!(d.scheme, Scheme::Badge);
    let is_control = matches!(
        d.scheme,
        Scheme::Badge
            | Scheme::ProcessCard
            | Scheme::DefectCard
            | Scheme::Quantity
            | Scheme::Result
            | Scheme::Logout
    );
    if badge && !is_badge {
        return Err(LineError {
            line,
            problem: format!(
                "{col}: {text:?} decodes as {}, not a badge",
                d.scheme.as_str()
            ),
        });
    }
    if !badge && is_control {
        return Err(LineError {
            line,
            problem: format!(
                "{col}: {text:?} is a station control code ({}), not a bundle ticket",
                d.scheme.as_str()
            ),
        });
    }
    Ok(d.key)
}

/// Stores parsed rows in one transaction: existing rows with the same key are replaced,
/// so re-importing a corrected file is safe.
pub fn import(tx: &Transaction<'_>, rows: &[Row]) -> rusqlite::Result<usize> {
    for row in rows {
        match row {
            Row::Worker {
                id,
                name,
                team,
                badge,
            } => {
                // A badge moves with its card: free it from any other worker first.
                tx.execute(
                    "UPDATE workers SET badge = NULL WHERE badge = ?1 AND id <> ?2",
                    params![badge, id],
                )?;
                tx.execute(
                    "INSERT INTO workers (id, name, team, badge) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT(id) DO UPDATE SET name = ?2, team = ?3, badge = ?4",
                    params![id, name, team, badge],
                )?;
            }
            Row::Bundle {
                trace_key,
                order,
                style,
                colour,
                size,
                quantity,
            } => {
                tx.execute(
                    "INSERT INTO bundles (trace_key, order_no, style, colour, size, quantity) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(trace_key) DO UPDATE SET \
                     order_no = ?2, style = ?3, colour = ?4, size = ?5, quantity = ?6",
                    params![trace_key, order, style, colour, size, quantity],
                )?;
            }
            Row::Process {
                order,
                process,
                step,
            } => {
                tx.execute(
                    "INSERT INTO processes (order_no, process, step) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(order_no, process) DO UPDATE SET step = ?3",
                    params![order, process, step],
                )?;
            }
        }
    }
    Ok(rows.len())
}

/// Opens (creating and migrating if needed) the journal database at `db` and imports
/// `rows` in one transaction. Safe beside a running agent: SQLite serialises the writers,
/// and these tables are not the hash-chained journal.
pub fn import_into(db: &std::path::Path, rows: &[Row]) -> anyhow::Result<usize> {
    use anyhow::Context;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut conn =
        crate::journal::connect(db).with_context(|| format!("opening {}", db.display()))?;
    crate::journal::schema::migrate(&mut conn)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let n = import(&tx, rows)?;
    tx.commit()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes() -> DecodeConfig {
        DecodeConfig::default()
    }

    #[test]
    fn workers_parse_with_decoded_badges() {
        let rows = parse(
            Kind::Workers,
            "id,name,team,badge\nW0042,李娜,A,W:E1042\nW0043,Wang Fang,,3547123456\n",
            &codes(),
        )
        .expect("valid");
        assert_eq!(
            rows[0],
            Row::Worker {
                id: "W0042".into(),
                name: "李娜".into(),
                team: Some("A".into()),
                badge: Some("badge:E1042".into())
            }
        );
        assert!(
            matches!(&rows[1], Row::Worker { badge: Some(b), team: None, .. } if b.contains("3547123456"))
        );
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let e = parse(
            Kind::Bundles,
            "trace_code,order,style,colour,size,quantity\n\
             (01)09506000134352(21)B1,PO-1,S,red,M,12\n\
             (01)09506000134352(21)B2,PO-1,S,red,M,twelve\n",
            &codes(),
        )
        .expect_err("bad quantity");
        assert_eq!(e.line, 3);
        assert!(e.problem.starts_with("quantity:"), "{e}");

        let e = parse(
            Kind::Workers,
            "id,name,team,badge\nW1,A,,W:1\nW2,B,,W:1\n",
            &codes(),
        )
        .expect_err("duplicate badge");
        assert_eq!(
            e.to_string(),
            "line 3: badge: \"badge:1\" already on line 2"
        );

        let e = parse(Kind::Workers, "id,name,badge\n", &codes()).expect_err("header");
        assert!(e
            .to_string()
            .starts_with("line 1: header must be `id,name,team,badge`"));

        let e = parse(
            Kind::Bundles,
            "trace_code,order,style,colour,size,quantity\nW:E1,PO,,,,1\n",
            &codes(),
        )
        .expect_err("control code as ticket");
        assert!(e.problem.contains("not a bundle ticket"), "{e}");
    }

    #[test]
    fn a_ticket_with_a_wrong_check_character_is_refused() {
        let good =
            bobbin_codes::generate_trace_code(&codes().trace, "FZ", "WS000001", "441900", "261123")
                .expect("generate");
        let mut bad = good.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        let bad = String::from_utf8(bad).expect("ascii");
        let text = format!(
            "trace_code,order,style,colour,size,quantity\n{good},PO,,,,12\n{bad},PO,,,,12\n"
        );
        let e = parse(Kind::Bundles, &text, &codes()).expect_err("bad check char");
        assert_eq!(e.line, 3);
        assert!(e.problem.contains("check character mismatch"), "{e}");
    }

    #[test]
    fn process_steps_start_at_one() {
        let e = parse(
            Kind::Processes,
            "order,process,step\nPO,collar,0\n",
            &codes(),
        )
        .expect_err("step 0");
        assert!(e.problem.starts_with("step:"), "{e}");
    }
}
