//! PNG figures: the learning curve of a run and the heat map of an ISM.

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow};
use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use promoscope_model::encoding::BASES;
use promoscope_model::ism::{ScoredSubstitution, Substitution};

use crate::history::EpochMetrics;
use crate::io::write_atomic;

/// Text needs a font; this one is compiled in, so figures look the same on
/// every machine, whatever fonts it has.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the bundled font is a valid TTF"));
    });
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("cannot draw {}: {e}", path.display())
}

/// The drawing area a figure is drawn on.
type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A figure of `width` × `height` pixels drawn by `draw` into memory, then
/// written to `path` as a PNG, atomically.
fn write_png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<()> {
    register_font();
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        draw(&root).map_err(|e| plot_error(path, e))?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&pixels, width, height, image::ColorType::Rgb8)
        .map_err(|e| plot_error(path, e))?;
    write_atomic(path, &png)
}

/// Training loss (left) and validation Pearson/Spearman (right) per epoch.
pub fn learning_curve(history: &[EpochMetrics], path: &Path) -> Result<()> {
    if history.is_empty() {
        return Ok(());
    }
    write_png(path, (1000, 400), |root| draw_learning_curve(history, root))
}

fn draw_learning_curve(
    history: &[EpochMetrics],
    root: &Area,
) -> Result<(), Box<dyn std::error::Error>> {
    let (left, right) = root.split_horizontally(500);
    let last_epoch = history.iter().map(|m| m.epoch).max().unwrap_or(1) as f64;
    let epochs = Epochs {
        range: 0.0..last_epoch.max(1.0) + 0.5,
        // At most one label an epoch: more would print half epochs as whole ones.
        labels: (last_epoch as usize + 1).min(11),
    };
    draw_losses(history, &left, &epochs)?;
    draw_validation(history, &right, &epochs)
}

/// The x axis of a learning curve.
struct Epochs {
    range: std::ops::Range<f64>,
    labels: usize,
}

type EpochChart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart over the epochs with its mesh drawn.
fn epoch_chart<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    epochs: &Epochs,
    y: std::ops::Range<f64>,
) -> Result<EpochChart<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(epochs.range.clone(), y)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels(epochs.labels)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    Ok(chart)
}

fn draw_losses(
    history: &[EpochMetrics],
    area: &Area,
    epochs: &Epochs,
) -> Result<(), Box<dyn std::error::Error>> {
    let losses: Vec<(f64, f64)> = history
        .iter()
        .map(|m| (m.epoch as f64, m.train_loss))
        .filter(|(_, l)| l.is_finite())
        .collect();
    let top = losses.iter().map(|p| p.1).fold(0.0, f64::max) * 1.05;
    let mut chart = epoch_chart(area, "training loss (MSE)", epochs, 0.0..top.max(1e-9))?;
    chart.draw_series(LineSeries::new(losses.clone(), &BLUE))?;
    chart.draw_series(losses.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))?;
    Ok(())
}

fn draw_validation(
    history: &[EpochMetrics],
    area: &Area,
    epochs: &Epochs,
) -> Result<(), Box<dyn std::error::Error>> {
    let series = [
        (
            "val Pearson",
            RED,
            history
                .iter()
                .map(|m| Some(m.val_pearson))
                .collect::<Vec<_>>(),
        ),
        (
            "val Spearman",
            GREEN,
            history.iter().map(|m| Some(m.val_spearman)).collect(),
        ),
        (
            "SWA Pearson",
            MAGENTA,
            history.iter().map(|m| m.swa_pearson).collect(),
        ),
    ];
    let (low, high) = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().flatten().copied())
        .filter(|v| v.is_finite())
        .fold((0.0f64, 0.1f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let mut chart = epoch_chart(area, "validation", epochs, low..(high * 1.1).min(1.0))?;
    for (label, colour, values) in series {
        let points: Vec<(f64, f64)> = history
            .iter()
            .zip(values)
            .filter_map(|(m, v)| v.filter(|v| v.is_finite()).map(|v| (m.epoch as f64, v)))
            .collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points, &colour))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    Ok(())
}

/// Positions × bases, each cell coloured by the substitution's effect (blue
/// lowers, red raises the prediction; white = no change, the scale symmetric
/// around the reference); the reference base of each position in grey.
pub fn ism_heat_map(
    sequence_len: usize,
    reference: f32,
    table: &[ScoredSubstitution],
    path: &Path,
) -> Result<()> {
    let width = (sequence_len as u32 * 9 + 140).max(400);
    write_png(path, (width, 260), |root| {
        draw_ism(sequence_len, reference, table, root)
    })
}

fn draw_ism(
    sequence_len: usize,
    reference: f32,
    table: &[ScoredSubstitution],
    root: &Area,
) -> Result<(), Box<dyn std::error::Error>> {
    let scale = table
        .iter()
        .map(|r| r.delta.abs())
        .fold(f32::EPSILON, f32::max);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("ISM: reference {reference:.3}, colour = Δ prediction (±{scale:.3})"),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(30)
        .build_cartesian_2d(0..sequence_len, 0..4usize)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("position")
        .y_labels(4)
        .y_label_formatter(&|i| {
            BASES
                .get(3 - i.min(&3))
                .map(|b| b.to_string())
                .unwrap_or_default()
        })
        .x_label_formatter(&|p| (p + 1).to_string())
        .draw()?;
    // Rows top to bottom: A, C, G, T.
    let row = |s: Substitution| {
        3 - usize::from(s.alternative_code().expect("ISM brings in A, C, G or T"))
    };
    chart.draw_series((0..sequence_len).flat_map(|p| {
        (0..4).map(move |r| {
            Rectangle::new([(p, r), (p + 1, r + 1)], RGBColor(200, 200, 200).filled())
        })
    }))?;
    chart.draw_series(table.iter().map(|r| {
        let s = r.substitution;
        let cell = row(s);
        Rectangle::new(
            [(s.position, cell), (s.position + 1, cell + 1)],
            diverging(r.delta / scale).filled(),
        )
    }))?;
    Ok(())
}

/// Blue (-1) → white (0) → red (+1).
fn diverging(t: f32) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let fade = |full: u8| (255.0 - (255.0 - f32::from(full)) * t.abs()) as u8;
    if t < 0.0 {
        RGBColor(fade(33), fade(102), fade(172))
    } else {
        RGBColor(fade(178), fade(24), fade(43))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverging_scale_is_white_at_zero_and_saturates() {
        assert_eq!(diverging(0.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(1.0), RGBColor(178, 24, 43));
        assert_eq!(diverging(-7.0), RGBColor(33, 102, 172));
    }
}
