//! Inspection rules as pure functions: the four-point fabric score and the risk-based quota
//! of cut-piece inspection (DG-A2), and the per-size sample coverage of finished-garment
//! inspection (DG-A3). The tablet form (`POST /api/inspections`) and the scan-driven drafts
//! of [`super::Workshop`] both end in [`evaluate_cut`] / [`evaluate_garment`] and the record
//! builders here, so the two paths can never disagree on what is conforming.
//!
//! Shortfalls are never refused: an inspection below its quota or coverage is still recorded,
//! with `nonconformity` entries in its body, because the inspection happened and a supervisor
//! must see it (DG-8).

use std::collections::BTreeMap;

use bobbin_sync::record::RecordContent;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Basis of the four-point score (DG gives the 16/30 bands without a unit; brief §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScoreUnit {
    /// Points per 100 square yards: defect sizes in inches, roll length in yards, width in inches.
    #[default]
    #[serde(rename = "per-100-sq-yd")]
    Per100SqYd,
    /// Points per 100 m²: defect sizes in mm, roll length in metres, width in mm.
    #[serde(rename = "per-100-sq-m")]
    Per100SqM,
}

/// What a fabric defect is, for its four-point score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefectKind {
    /// A linear defect; `size` is its length (in or mm).
    Linear,
    /// A hole or opening; `size` is its largest dimension (in or mm).
    Hole,
    /// A continuous defect; `size` is how many linear yards (metres) it runs through.
    Continuous,
}

/// One defect found on the roll.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FabricDefect {
    /// Index of the linear yard (metre) of the roll it starts in; the per-yard cap groups by it.
    pub yard: u32,
    /// What kind of defect.
    pub kind: DefectKind,
    /// Length / hole size in in (mm), or yards (metres) spanned for a continuous defect.
    #[serde(default)]
    pub size: f64,
}

/// The inspected fabric, when the form sends raw defects instead of a ready score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FabricRoll {
    /// Length inspected, yards (metres for [`ScoreUnit::Per100SqM`]).
    pub length: f64,
    /// Cuttable width, inches (mm for [`ScoreUnit::Per100SqM`]).
    pub width: f64,
    /// Every defect found.
    #[serde(default)]
    pub defects: Vec<FabricDefect>,
}

/// No linear yard (metre) scores more than this (ASTM D5430).
pub const MAX_POINTS_PER_YARD: u32 = 4;

/// Longest continuous defect accepted, in yards (metres): bounds the work per defect.
pub const MAX_CONTINUOUS_SPAN: u32 = 10_000;

/// Four-point score of one defect, before the per-yard cap (brief §5.3, vectors FP-3).
pub fn defect_points(kind: DefectKind, size: f64, unit: ScoreUnit) -> u32 {
    // Thresholds as published: 3/6/9 in and 1 in holes; 75/150/230 mm and 25 mm holes.
    let (t1, t2, t3, hole) = match unit {
        ScoreUnit::Per100SqYd => (3.0, 6.0, 9.0, 1.0),
        ScoreUnit::Per100SqM => (75.0, 150.0, 230.0, 25.0),
    };
    match kind {
        DefectKind::Continuous => MAX_POINTS_PER_YARD,
        DefectKind::Hole if size <= hole => 2,
        DefectKind::Hole => 4,
        DefectKind::Linear if size <= t1 => 1,
        DefectKind::Linear if size <= t2 => 2,
        DefectKind::Linear if size <= t3 => 3,
        DefectKind::Linear => 4,
    }
}

/// Total points of a roll: per-defect points summed per linear yard, each yard capped at
/// [`MAX_POINTS_PER_YARD`]; a continuous defect scores the cap in every yard it runs through.
pub fn four_point_total(defects: &[FabricDefect], unit: ScoreUnit) -> u32 {
    let mut per_yard: BTreeMap<u32, u32> = BTreeMap::new();
    for d in defects {
        if d.kind == DefectKind::Continuous {
            let span = continuous_span(d.size);
            for y in d.yard..d.yard.saturating_add(span) {
                per_yard.insert(y, MAX_POINTS_PER_YARD);
            }
        } else {
            let p = per_yard.entry(d.yard).or_default();
            *p = p.saturating_add(defect_points(d.kind, d.size, unit));
        }
    }
    per_yard
        .values()
        .map(|p| (*p).min(MAX_POINTS_PER_YARD))
        .sum()
}

fn continuous_span(size: f64) -> u32 {
    if size.is_finite() && size > 1.0 {
        // Clamped: a malformed form must not make us loop for ever.
        (size.ceil() as u32).min(MAX_CONTINUOUS_SPAN)
    } else {
        1
    }
}

/// Points per 100 yd² (`points × 3600 / (yards × width in)`) or per 100 m²
/// (`points × 100 000 / (metres × width mm)`), rounded to 2 decimals as recorded;
/// `None` for a non-positive or non-finite length or width (vectors FP-1, FP-2).
pub fn normalised_score(points: u32, length: f64, width: f64, unit: ScoreUnit) -> Option<f64> {
    if !(length.is_finite() && width.is_finite() && length > 0.0 && width > 0.0) {
        return None;
    }
    let k = match unit {
        ScoreUnit::Per100SqYd => 3600.0,
        ScoreUnit::Per100SqM => 100_000.0,
    };
    Some(round2(f64::from(points) * k / (length * width)))
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Fabric risk from the four-point score (DG-A2 footnote a).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    /// Below 16: DG sets no rule; sampling per the factory's share.
    Low,
    /// 16 to 30 inclusive: at least 50 % of the pieces.
    Medium,
    /// Above 30: every piece.
    High,
}

impl Risk {
    /// Serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }

    /// The inspection mode the record names (DG-A2 "inspection mode by fabric risk").
    pub fn mode(self) -> &'static str {
        match self {
            Risk::Low => "factory-sampling",
            Risk::Medium => "at-least-half",
            Risk::High => "full",
        }
    }
}

/// Lowest score of medium risk.
pub const MEDIUM_RISK_FROM: f64 = 16.0;
/// Scores above this are high risk.
pub const HIGH_RISK_ABOVE: f64 = 30.0;

/// Risk band of a (rounded) score: ≥ 16 and ≤ 30 medium, > 30 high, else low (RK-1..RK-5).
pub fn risk_for_score(score: f64) -> Risk {
    if score > HIGH_RISK_ABOVE {
        Risk::High
    } else if score >= MEDIUM_RISK_FROM {
        Risk::Medium
    } else {
        Risk::Low
    }
}

/// `ceil(n × percent / 100)` in integers, so 10 % of 100 is exactly 10 (no float rounding).
pub fn ceil_percent(n: u32, percent: u32) -> u32 {
    let v = (u64::from(n) * u64::from(percent.min(100))).div_ceil(100);
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Pieces that must be inspected: high → all, medium → ceil(50 %), low → ceil(low_risk_percent).
pub fn required_inspected(risk: Risk, pieces: u32, low_risk_percent: u32) -> u32 {
    match risk {
        Risk::High => pieces,
        Risk::Medium => ceil_percent(pieces, 50),
        Risk::Low => ceil_percent(pieces, low_risk_percent),
    }
}

/// Settings of the inspection rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InspectionRules {
    /// Basis of the four-point score; recorded with every cut inspection.
    pub score_unit: ScoreUnit,
    /// Share of pieces (percent, 0-100) to inspect at low risk (< 16): the factory's rule.
    pub low_risk_percent: u32,
}

impl Default for InspectionRules {
    fn default() -> Self {
        Self {
            score_unit: ScoreUnit::Per100SqYd,
            low_risk_percent: 0,
        }
    }
}

/// A cut-piece inspection (DG-A2) as the tablet form sends it, or as a scan draft ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutInspectionForm {
    /// Production order number.
    pub order: String,
    /// Number of cut pieces the inspection covers.
    pub cut_pieces: u32,
    /// Four-point score already normalised (points per 100 units², see [`ScoreUnit`]).
    #[serde(default)]
    pub score: Option<f64>,
    /// Raw fabric defects to compute the score from (used when `score` is absent).
    #[serde(default)]
    pub fabric: Option<FabricRoll>,
    /// Pieces that passed.
    pub passed: u32,
    /// Pieces that failed.
    pub failed: u32,
    /// Defect codes found, with counts.
    #[serde(default)]
    pub defects: BTreeMap<String, u32>,
    /// Inspector's worker id (never a name).
    pub inspector: String,
    /// Free-text remarks.
    #[serde(default)]
    pub remarks: Option<String>,
    /// Trace key of the bundle / lay ticket, when the inspection is of one.
    #[serde(default)]
    pub trace_key: Option<String>,
    /// When the inspection started (UTC ms), if known.
    #[serde(default)]
    pub start_ms: Option<i64>,
}

/// What [`evaluate_cut`] concluded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CutEvaluation {
    /// Total four-point points, when computed from raw defects.
    pub points: Option<u32>,
    /// The score used for the risk band (2 decimals), if any.
    pub score: Option<f64>,
    /// Its unit.
    pub score_unit: ScoreUnit,
    /// Risk band; `None` without a score.
    pub risk: Option<Risk>,
    /// Pieces that had to be inspected; `None` without a score.
    pub required_inspected: Option<u32>,
    /// Pieces inspected (passed + failed).
    pub inspected: u32,
    /// Why the inspection falls short of DG-A2 (empty = conforming).
    pub nonconformity: Vec<String>,
    /// Remarks that are not shortfalls (e.g. `no-pieces`, `unknown-bundle`).
    pub flags: Vec<String>,
}

/// Check a cut inspection against DG-A2: risk band from the score (given, or computed from
/// `fabric` with the four-point rules), required share, pieces inspected.
///
/// # Errors
///
/// Only for malformed input (the API answers 400): empty inspector, a negative or
/// non-finite score or defect size, a roll without positive length and width. Shortfalls
/// are `nonconformity` entries, never errors.
pub fn evaluate_cut(
    form: &CutInspectionForm,
    rules: &InspectionRules,
) -> Result<CutEvaluation, String> {
    if form.inspector.trim().is_empty() {
        return Err("inspector: must not be empty".into());
    }
    let mut points = None;
    let score = match (form.score, &form.fabric) {
        (Some(s), _) if !s.is_finite() || s < 0.0 => {
            return Err("score: must be a finite number ≥ 0".into())
        }
        (Some(s), _) => Some(round2(s)),
        (None, Some(roll)) => {
            if roll
                .defects
                .iter()
                .any(|d| !d.size.is_finite() || d.size < 0.0)
            {
                return Err("fabric.defects: size must be a finite number ≥ 0".into());
            }
            let p = four_point_total(&roll.defects, rules.score_unit);
            points = Some(p);
            Some(
                normalised_score(p, roll.length, roll.width, rules.score_unit)
                    .ok_or("fabric: length and width must be > 0")?,
            )
        }
        (None, None) => None,
    };
    Ok(assess_cut(form, rules, points, score))
}

/// The DG-A2 checks on validated input; the scan drafts call it directly (their input cannot
/// be malformed in the ways [`evaluate_cut`] refuses).
pub(crate) fn assess_cut(
    form: &CutInspectionForm,
    rules: &InspectionRules,
    points: Option<u32>,
    score: Option<f64>,
) -> CutEvaluation {
    let inspected = form.passed.saturating_add(form.failed);
    let mut nonconformity = Vec::new();
    let mut flags = Vec::new();
    let risk = score.map(risk_for_score);
    let required = risk.map(|r| required_inspected(r, form.cut_pieces, rules.low_risk_percent));
    match required {
        None => nonconformity.push("no-fabric-score".to_owned()),
        Some(req) if inspected < req => {
            nonconformity.push(format!("below-required-share:{inspected}<{req}"))
        }
        Some(_) => {}
    }
    if inspected > form.cut_pieces {
        nonconformity.push(format!(
            "inspected-exceeds-pieces:{inspected}>{}",
            form.cut_pieces
        ));
    }
    if form.cut_pieces == 0 {
        // RK-5: an empty order is a valid record, but someone should look at it.
        flags.push("no-pieces".to_owned());
    }
    CutEvaluation {
        points,
        score,
        score_unit: rules.score_unit,
        risk,
        required_inspected: required,
        inspected,
        nonconformity,
        flags,
    }
}

/// The `inspection.cut` record for a form and its evaluation. `date` is the workshop-local
/// date (`YYYY-MM-DD`) of `time_ms`.
pub fn cut_inspection_record(
    form: &CutInspectionForm,
    eval: &CutEvaluation,
    station: Option<&str>,
    time_ms: i64,
    date: &str,
) -> RecordContent {
    let body = json!({
        "order": form.order,
        "cut_pieces": form.cut_pieces,
        "points": eval.points,
        "score": eval.score,
        "score_unit": eval.score_unit,
        "risk": eval.risk,
        "mode": eval.risk.map(Risk::mode),
        "required_inspected": eval.required_inspected,
        "inspected": eval.inspected,
        "passed": form.passed,
        "failed": form.failed,
        "defects": form.defects,
        "inspector": form.inspector,
        "date": date,
        "start_ms": form.start_ms,
        "end_ms": time_ms,
        "remarks": form.remarks,
        "nonconformity": eval.nonconformity,
        "flags": eval.flags,
    });
    let by = Inspection {
        inspector: &form.inspector,
        trace_key: form.trace_key.as_deref(),
        order: &form.order,
    };
    by.record("inspection.cut", station, time_ms, body)
}

/// What both inspection records take from their form besides the body.
struct Inspection<'f> {
    inspector: &'f str,
    trace_key: Option<&'f str>,
    order: &'f str,
}

impl Inspection<'_> {
    fn record(
        &self,
        kind: &str,
        station: Option<&str>,
        time_ms: i64,
        body: serde_json::Value,
    ) -> RecordContent {
        RecordContent {
            kind: kind.into(),
            time_ms,
            station: station.map(str::to_owned),
            worker: Some(self.inspector.to_owned()),
            trace_code: self.trace_key.map(str::to_owned),
            order: Some(self.order.to_owned()).filter(|o| !o.is_empty()),
            process: None,
            body: body.to_string(),
        }
    }
}

/// Minimum sample share per size for finished-garment inspection (DG-A3 "每码≥10%").
pub const GARMENT_SAMPLE_PERCENT: u32 = 10;

/// Coverage of one size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SizeCoverage {
    /// The size.
    pub size: String,
    /// Pieces produced in it.
    pub produced: u32,
    /// Pieces inspected in it.
    pub inspected: u32,
    /// ceil(10 % of produced), at least 1 for a produced size.
    pub required: u32,
}

/// Per-size coverage and what falls short (vectors SZ-1..SZ-4). A size with `produced` 0 is
/// not required; an inspected size that was not produced is a nonconformity too (bad data).
pub fn size_coverage(
    produced: &BTreeMap<String, u32>,
    inspected: &BTreeMap<String, u32>,
) -> (Vec<SizeCoverage>, Vec<String>) {
    let mut sizes = Vec::new();
    let mut nonconformity = Vec::new();
    for (size, &n) in produced.iter().filter(|(_, n)| **n > 0) {
        let got = inspected.get(size).copied().unwrap_or(0);
        let required = ceil_percent(n, GARMENT_SAMPLE_PERCENT).max(1);
        if got == 0 {
            nonconformity.push(format!("size-not-covered:{size}"));
        } else if got < required {
            nonconformity.push(format!("size-below-quota:{size}:{got}<{required}"));
        }
        sizes.push(SizeCoverage {
            size: size.clone(),
            produced: n,
            inspected: got,
            required,
        });
    }
    for (size, &got) in inspected {
        if got > 0 && produced.get(size).copied().unwrap_or(0) == 0 {
            nonconformity.push(format!("size-not-produced:{size}"));
        }
    }
    (sizes, nonconformity)
}

/// Whether pass + fail equals the pieces inspected (vector SZ-5).
pub fn counts_add_up(passed: u32, failed: u32, inspected: u32) -> bool {
    u64::from(passed) + u64::from(failed) == u64::from(inspected)
}

/// The DG-A3 checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChecklistItem {
    /// Trims and accessories against picture, sample and tech pack.
    TrimsVsReference,
    /// Process against tech pack.
    ProcessVsTechPack,
    /// Broken or skipped stitches (断线、跳线).
    BrokenOrSkippedStitches,
    /// Open seams or raw edges (散口、散边).
    OpenSeamsOrRawEdges,
    /// Uneven ease (容位不均).
    UnevenEase,
    /// Pleats or tucks (打折).
    PleatsOrTucks,
    /// Pulled or off-colour yarn (抽纱、色纱).
    PulledOrOffColourYarn,
    /// Soiling (脏污).
    Soiling,
}

impl ChecklistItem {
    /// Every item, in the order DG-A3 lists them.
    pub const ALL: [ChecklistItem; 8] = [
        Self::TrimsVsReference,
        Self::ProcessVsTechPack,
        Self::BrokenOrSkippedStitches,
        Self::OpenSeamsOrRawEdges,
        Self::UnevenEase,
        Self::PleatsOrTucks,
        Self::PulledOrOffColourYarn,
        Self::Soiling,
    ];

    /// Serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TrimsVsReference => "trims-vs-reference",
            Self::ProcessVsTechPack => "process-vs-tech-pack",
            Self::BrokenOrSkippedStitches => "broken-or-skipped-stitches",
            Self::OpenSeamsOrRawEdges => "open-seams-or-raw-edges",
            Self::UnevenEase => "uneven-ease",
            Self::PleatsOrTucks => "pleats-or-tucks",
            Self::PulledOrOffColourYarn => "pulled-or-off-colour-yarn",
            Self::Soiling => "soiling",
        }
    }
}

/// The finding for one checklist item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistResult {
    /// True when the item conforms.
    pub ok: bool,
    /// Pieces found with this problem.
    #[serde(default)]
    pub count: u32,
    /// Free text.
    #[serde(default)]
    pub note: Option<String>,
}

/// Produced and inspected pieces of one size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeCount {
    /// The size.
    pub size: String,
    /// Pieces produced.
    pub produced: u32,
    /// Pieces inspected.
    pub inspected: u32,
}

/// A finished-garment inspection (DG-A3) as the tablet form sends it, or as a scan draft ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GarmentInspectionForm {
    /// Production order number.
    pub order: String,
    /// Per-size production and sample counts; production quantity is their sum.
    pub sizes: Vec<SizeCount>,
    /// Pieces that passed.
    pub passed: u32,
    /// Pieces that failed.
    pub failed: u32,
    /// The DG-A3 checklist; an item absent here was not checked.
    #[serde(default)]
    pub checklist: BTreeMap<ChecklistItem, ChecklistResult>,
    /// Defect codes found, with counts.
    #[serde(default)]
    pub defects: BTreeMap<String, u32>,
    /// Inspector's worker id (never a name).
    pub inspector: String,
    /// Free-text remarks.
    #[serde(default)]
    pub remarks: Option<String>,
    /// Trace key of the bundle, when the inspection is of one.
    #[serde(default)]
    pub trace_key: Option<String>,
    /// When the inspection started (UTC ms), if known.
    #[serde(default)]
    pub start_ms: Option<i64>,
}

/// What [`evaluate_garment`] concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GarmentEvaluation {
    /// Sum of produced over sizes.
    pub production_quantity: u32,
    /// Sum of inspected over sizes.
    pub inspected: u32,
    /// Coverage per produced size.
    pub coverage: Vec<SizeCoverage>,
    /// Why the inspection falls short of DG-A3 (empty = conforming).
    pub nonconformity: Vec<String>,
    /// Remarks that are not shortfalls (e.g. `checklist-not-captured`).
    pub flags: Vec<String>,
}

/// Check a finished-garment inspection against DG-A3: every produced size sampled at
/// ≥ ceil(10 %), pass + fail = inspected, every checklist item answered.
///
/// # Errors
///
/// Only for malformed input (the API answers 400): empty inspector, an empty or repeated
/// size. Shortfalls are `nonconformity` entries, never errors.
pub fn evaluate_garment(form: &GarmentInspectionForm) -> Result<GarmentEvaluation, String> {
    if form.inspector.trim().is_empty() {
        return Err("inspector: must not be empty".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, s) in form.sizes.iter().enumerate() {
        if s.size.trim().is_empty() {
            return Err(format!("sizes[{i}].size: must not be empty"));
        }
        if !seen.insert(&s.size) {
            return Err(format!("sizes[{i}].size: {:?} appears twice", s.size));
        }
    }
    Ok(assess_garment(form, true))
}

/// The DG-A3 checks on validated input. `checklist_required` is false for scan drafts, which
/// cannot capture the checklist: they get the flag `checklist-not-captured` instead.
pub(crate) fn assess_garment(
    form: &GarmentInspectionForm,
    checklist_required: bool,
) -> GarmentEvaluation {
    let mut produced = BTreeMap::new();
    let mut inspected = BTreeMap::new();
    for s in &form.sizes {
        let p = produced.entry(s.size.clone()).or_insert(0u32);
        *p = p.saturating_add(s.produced);
        let n = inspected.entry(s.size.clone()).or_insert(0u32);
        *n = n.saturating_add(s.inspected);
    }
    let sum = |m: &BTreeMap<String, u32>| m.values().fold(0u32, |a, b| a.saturating_add(*b));
    let (coverage, mut nonconformity) = size_coverage(&produced, &inspected);
    let total_inspected = sum(&inspected);
    if !counts_add_up(form.passed, form.failed, total_inspected) {
        nonconformity.push(format!(
            "counts-do-not-add-up:{}+{}!={total_inspected}",
            form.passed, form.failed
        ));
    }
    if produced.values().all(|n| *n == 0) {
        nonconformity.push("no-sizes-produced".to_owned());
    }
    let mut flags = Vec::new();
    if checklist_required {
        for item in ChecklistItem::ALL {
            if !form.checklist.contains_key(&item) {
                nonconformity.push(format!("checklist-missing:{}", item.as_str()));
            }
        }
    } else {
        flags.push("checklist-not-captured".to_owned());
    }
    GarmentEvaluation {
        production_quantity: sum(&produced),
        inspected: total_inspected,
        coverage,
        nonconformity,
        flags,
    }
}

/// The `inspection.garment` record for a form and its evaluation. `date` is the
/// workshop-local date (`YYYY-MM-DD`) of `time_ms`.
pub fn garment_inspection_record(
    form: &GarmentInspectionForm,
    eval: &GarmentEvaluation,
    station: Option<&str>,
    time_ms: i64,
    date: &str,
) -> RecordContent {
    let body = json!({
        "order": form.order,
        "production_quantity": eval.production_quantity,
        "inspected": eval.inspected,
        "passed": form.passed,
        "failed": form.failed,
        "coverage": eval.coverage,
        "checklist": form.checklist,
        "defects": form.defects,
        "inspector": form.inspector,
        "date": date,
        "start_ms": form.start_ms,
        "end_ms": time_ms,
        "remarks": form.remarks,
        "nonconformity": eval.nonconformity,
        "flags": eval.flags,
    });
    let by = Inspection {
        inspector: &form.inspector,
        trace_key: form.trace_key.as_deref(),
        order: &form.order,
    };
    by.record("inspection.garment", station, time_ms, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YD: ScoreUnit = ScoreUnit::Per100SqYd;

    fn lin(yard: u32, size: f64) -> FabricDefect {
        FabricDefect {
            yard,
            kind: DefectKind::Linear,
            size,
        }
    }

    #[test]
    fn fp1_published_roll_scores_28_points_and_12_per_100_sq_yd() {
        let mut d = Vec::new();
        let mut y = 0;
        let mut add = |kind, size| {
            y += 1;
            d.push(FabricDefect {
                yard: y,
                kind,
                size,
            });
        };
        for _ in 0..6 {
            add(DefectKind::Linear, 2.5);
        }
        for _ in 0..4 {
            add(DefectKind::Linear, 5.0);
        }
        for _ in 0..2 {
            add(DefectKind::Linear, 8.0);
        }
        add(DefectKind::Linear, 10.0);
        add(DefectKind::Hole, 1.5);
        assert_eq!(four_point_total(&d, YD), 28);
        assert_eq!(normalised_score(28, 150.0, 56.0, YD), Some(12.0));
    }

    #[test]
    fn fp2_metric_normalisation() {
        assert_eq!(
            normalised_score(28, 100.0, 1500.0, ScoreUnit::Per100SqM),
            Some(18.67)
        );
        assert_eq!(
            normalised_score(28, 0.0, 1500.0, ScoreUnit::Per100SqM),
            None
        );
    }

    #[test]
    fn fp3_points_by_length_and_holes() {
        assert_eq!(defect_points(DefectKind::Linear, 4.0, YD), 2); // FP-3
        assert_eq!(defect_points(DefectKind::Linear, 3.0, YD), 1);
        assert_eq!(defect_points(DefectKind::Linear, 6.0, YD), 2);
        assert_eq!(defect_points(DefectKind::Linear, 9.0, YD), 3);
        assert_eq!(defect_points(DefectKind::Linear, 9.5, YD), 4);
        assert_eq!(defect_points(DefectKind::Hole, 1.0, YD), 2);
        assert_eq!(defect_points(DefectKind::Hole, 1.1, YD), 4);
        let m = ScoreUnit::Per100SqM;
        assert_eq!(defect_points(DefectKind::Linear, 75.0, m), 1);
        assert_eq!(defect_points(DefectKind::Linear, 100.0, m), 2);
        assert_eq!(defect_points(DefectKind::Linear, 200.0, m), 3);
        assert_eq!(defect_points(DefectKind::Linear, 231.0, m), 4);
        assert_eq!(defect_points(DefectKind::Hole, 30.0, m), 4);
    }

    #[test]
    fn fp4_three_small_defects_in_one_yard_are_under_the_cap() {
        assert_eq!(
            four_point_total(&[lin(7, 3.0), lin(7, 3.0), lin(7, 3.0)], YD),
            3
        );
    }

    #[test]
    fn fp5_per_yard_cap() {
        assert_eq!(four_point_total(&[lin(7, 9.5), lin(7, 9.5)], YD), 4);
    }

    #[test]
    fn continuous_defect_scores_the_cap_per_yard_it_spans() {
        let c = FabricDefect {
            yard: 3,
            kind: DefectKind::Continuous,
            size: 2.5,
        };
        // Yards 3, 4, 5 at 4 points each; the linear defect in yard 4 adds nothing.
        assert_eq!(four_point_total(&[c, lin(4, 2.0), lin(9, 2.0)], YD), 13);
        let huge = FabricDefect { size: 1e12, ..c };
        assert_eq!(four_point_total(&[huge], YD), 4 * MAX_CONTINUOUS_SPAN);
    }

    #[test]
    fn rk_risk_bands_and_quota() {
        // RK-1: below medium → factory rule (default 0 %, or e.g. 10 %).
        assert_eq!(risk_for_score(15.99), Risk::Low);
        assert_eq!(required_inspected(Risk::Low, 200, 0), 0);
        assert_eq!(required_inspected(Risk::Low, 200, 10), 20);
        // RK-2
        assert_eq!(risk_for_score(16.0), Risk::Medium);
        assert_eq!(required_inspected(Risk::Medium, 200, 0), 100);
        // RK-3
        assert_eq!(risk_for_score(30.0), Risk::Medium);
        assert_eq!(required_inspected(Risk::Medium, 13, 0), 7);
        // RK-4
        assert_eq!(risk_for_score(30.01), Risk::High);
        assert_eq!(required_inspected(Risk::High, 13, 0), 13);
        // RK-5
        assert_eq!(risk_for_score(45.0), Risk::High);
        assert_eq!(required_inspected(Risk::High, 0, 0), 0);
    }

    fn cut(score: Option<f64>, pieces: u32, passed: u32, failed: u32) -> CutInspectionForm {
        CutInspectionForm {
            order: "PO-1".into(),
            cut_pieces: pieces,
            score,
            fabric: None,
            passed,
            failed,
            defects: BTreeMap::new(),
            inspector: "W0007".into(),
            remarks: None,
            trace_key: None,
            start_ms: None,
        }
    }

    #[test]
    fn evaluate_cut_flags_an_inspection_below_its_share() {
        let r = InspectionRules::default();
        // RK-2: 16 points, 200 pieces → 100 required; 90 inspected is short.
        let e = evaluate_cut(&cut(Some(16.0), 200, 85, 5), &r).unwrap();
        assert_eq!(e.risk, Some(Risk::Medium));
        assert_eq!(e.required_inspected, Some(100));
        assert_eq!(e.nonconformity, vec!["below-required-share:90<100"]);
        // RK-3 satisfied exactly.
        let e = evaluate_cut(&cut(Some(30.0), 13, 7, 0), &r).unwrap();
        assert!(e.nonconformity.is_empty(), "{e:?}");
        // RK-4: high needs all 13.
        let e = evaluate_cut(&cut(Some(30.01), 13, 12, 0), &r).unwrap();
        assert_eq!(e.nonconformity, vec!["below-required-share:12<13"]);
        // RK-5: empty order is valid but flagged.
        let e = evaluate_cut(&cut(Some(45.0), 0, 0, 0), &r).unwrap();
        assert!(e.nonconformity.is_empty());
        assert_eq!(e.flags, vec!["no-pieces"]);
        // RK-1 with the default factory share of 0.
        let e = evaluate_cut(&cut(Some(15.99), 200, 0, 0), &r).unwrap();
        assert_eq!((e.risk, e.nonconformity.len()), (Some(Risk::Low), 0));
        // No score at all: the mode cannot be chosen.
        let e = evaluate_cut(&cut(None, 10, 10, 0), &r).unwrap();
        assert_eq!(e.nonconformity, vec!["no-fabric-score"]);
    }

    #[test]
    fn evaluate_cut_computes_the_score_from_raw_defects() {
        let mut f = cut(None, 20, 20, 0);
        f.fabric = Some(FabricRoll {
            length: 150.0,
            width: 56.0,
            defects: vec![lin(1, 10.0); 1],
        });
        let e = evaluate_cut(&f, &InspectionRules::default()).unwrap();
        assert_eq!((e.points, e.score), (Some(4), Some(1.71)));
        f.fabric.as_mut().unwrap().width = 0.0;
        assert!(evaluate_cut(&f, &InspectionRules::default()).is_err());
        let mut g = cut(Some(f64::NAN), 1, 1, 0);
        assert!(evaluate_cut(&g, &InspectionRules::default()).is_err());
        g.score = Some(1.0);
        g.inspector = " ".into();
        assert!(evaluate_cut(&g, &InspectionRules::default()).is_err());
    }

    #[test]
    fn cut_record_carries_the_nonconformity() {
        let f = cut(Some(20.0), 10, 2, 1);
        let e = evaluate_cut(&f, &InspectionRules::default()).unwrap();
        let r = cut_inspection_record(&f, &e, Some("cut-01"), 1_000, "2026-11-20");
        assert_eq!(r.kind, "inspection.cut");
        assert_eq!(r.worker.as_deref(), Some("W0007"));
        let b: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(b["nonconformity"][0], "below-required-share:3<5");
        assert_eq!(b["risk"], "medium");
        assert_eq!(b["mode"], "at-least-half");
        assert_eq!(b["score_unit"], "per-100-sq-yd");
    }

    fn sizes(v: &[(&str, u32)]) -> BTreeMap<String, u32> {
        v.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
    }

    #[test]
    fn sz1_all_sizes_at_quota() {
        let (c, nc) = size_coverage(
            &sizes(&[("S", 100), ("M", 150), ("L", 95)]),
            &sizes(&[("S", 10), ("M", 15), ("L", 10)]),
        );
        assert!(nc.is_empty(), "{nc:?}");
        let req: Vec<u32> = c.iter().map(|s| s.required).collect();
        // BTreeMap order: L, M, S.
        assert_eq!(req, vec![10, 15, 10]);
    }

    #[test]
    fn sz2_one_size_below_quota() {
        let (_, nc) = size_coverage(
            &sizes(&[("S", 100), ("M", 150), ("L", 95)]),
            &sizes(&[("S", 10), ("M", 15), ("L", 9)]),
        );
        assert_eq!(nc, vec!["size-below-quota:L:9<10"]);
    }

    #[test]
    fn sz3_size_not_covered() {
        let (_, nc) = size_coverage(
            &sizes(&[("S", 100), ("M", 150), ("L", 95)]),
            &sizes(&[("S", 20), ("M", 30)]),
        );
        assert_eq!(nc, vec!["size-not-covered:L"]);
    }

    #[test]
    fn sz4_small_size_needs_one() {
        let (c, nc) = size_coverage(&sizes(&[("XS", 3)]), &sizes(&[("XS", 1)]));
        assert!(nc.is_empty());
        assert_eq!(c[0].required, 1);
        let (_, nc) = size_coverage(&sizes(&[("XS", 3)]), &sizes(&[]));
        assert_eq!(nc, vec!["size-not-covered:XS"]);
    }

    #[test]
    fn sz5_counts_must_add_up() {
        assert!(!counts_add_up(30, 3, 35));
        assert!(counts_add_up(30, 5, 35));
    }

    fn garment() -> GarmentInspectionForm {
        GarmentInspectionForm {
            order: "PO-1".into(),
            sizes: vec![
                SizeCount {
                    size: "S".into(),
                    produced: 100,
                    inspected: 10,
                },
                SizeCount {
                    size: "M".into(),
                    produced: 150,
                    inspected: 15,
                },
                SizeCount {
                    size: "L".into(),
                    produced: 95,
                    inspected: 10,
                },
            ],
            passed: 33,
            failed: 2,
            checklist: ChecklistItem::ALL
                .iter()
                .map(|i| {
                    (
                        *i,
                        ChecklistResult {
                            ok: true,
                            count: 0,
                            note: None,
                        },
                    )
                })
                .collect(),
            defects: BTreeMap::new(),
            inspector: "W0009".into(),
            remarks: None,
            trace_key: None,
            start_ms: None,
        }
    }

    #[test]
    fn evaluate_garment_vectors() {
        // SZ-1 with a full checklist: conforming.
        let e = evaluate_garment(&garment()).unwrap();
        assert!(e.nonconformity.is_empty(), "{e:?}");
        assert_eq!((e.production_quantity, e.inspected), (345, 35));
        // SZ-5: pass 30 + fail 3 against 35 inspected.
        let mut f = garment();
        (f.passed, f.failed) = (30, 3);
        let e = evaluate_garment(&f).unwrap();
        assert_eq!(e.nonconformity, vec!["counts-do-not-add-up:30+3!=35"]);
        // SZ-2 and a missing checklist item.
        let mut f = garment();
        f.sizes[2].inspected = 9;
        f.passed = 32;
        f.checklist.remove(&ChecklistItem::Soiling);
        let e = evaluate_garment(&f).unwrap();
        assert_eq!(
            e.nonconformity,
            vec!["size-below-quota:L:9<10", "checklist-missing:soiling"]
        );
        let r = garment_inspection_record(&f, &e, None, 5, "2026-11-20");
        let b: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(b["nonconformity"][1], "checklist-missing:soiling");
        assert_eq!(b["checklist"]["uneven-ease"]["ok"], true);
        // Malformed: duplicate size.
        let mut f = garment();
        f.sizes[1].size = "S".into();
        assert!(evaluate_garment(&f).is_err());
    }

    #[test]
    fn garment_form_json_round_trip() {
        let text = r#"{"order":"PO-9","sizes":[{"size":"XS","produced":3,"inspected":1}],
            "passed":1,"failed":0,"checklist":{"soiling":{"ok":true}},"inspector":"W1"}"#;
        let f: GarmentInspectionForm = serde_json::from_str(text).unwrap();
        let e = evaluate_garment(&f).unwrap();
        assert_eq!(e.nonconformity.len(), 7); // seven checklist items missing
        assert!(
            serde_json::from_str::<GarmentInspectionForm>(r#"{"order":"x","bogus":1}"#).is_err()
        );
    }
}
