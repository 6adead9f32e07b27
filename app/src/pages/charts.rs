//! Charts drawn as SVG on the server: no chart library reaches the browser. Each chart is a figure with
//! a caption, an accessible name and a table of its figures beside it (for screen readers and for anyone
//! who wants the exact numbers).

use super::components::format_bytes;
use leptos::prelude::*;

/// The drawing's size in SVG units; it scales to the width of its card.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// One line of a line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its name, in the legend.
    pub name: String,
    /// A value per label (`None`: no figure that day).
    pub values: Vec<Option<f64>>,
}

/// What a chart's values are: how they are written, and where the axis tops out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things.
    Count,
    /// Bytes (KiB, MiB, GiB; the axis at a round number of them).
    Bytes,
    /// A duration in seconds.
    Seconds,
}

impl Unit {
    /// `value` as people read it.
    pub fn format(self, value: f64) -> String {
        match self {
            Self::Count => format!("{value:.0}"),
            Self::Bytes => format_bytes(value.max(0.0) as u64),
            Self::Seconds if value == 0.0 => "0 s".to_owned(),
            Self::Seconds if value < 1.0 => format!("{:.0} ms", value * 1000.0),
            Self::Seconds if value < 10.0 => format!("{value:.1} s"),
            Self::Seconds if value < 120.0 => format!("{value:.0} s"),
            Self::Seconds => format!("{:.0} min", value / 60.0),
        }
    }

    /// The top of the value axis for a largest value of `max`: round in this unit.
    pub fn top(self, max: f64) -> f64 {
        match self {
            Self::Bytes if max >= 1024.0 => {
                let scale = 1024f64.powf((max.log2() / 10.0).floor().min(3.0));
                axis_top(max / scale) * scale
            }
            _ => axis_top(max),
        }
    }
}

/// The top of the value axis: `max` rounded up to 1, 2 or 5 times a power of ten (1 when there is
/// nothing to show).
pub fn axis_top(max: f64) -> f64 {
    if max.is_nan() || max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|top| *top >= max)
        .unwrap_or(10.0 * power)
}

/// The x coordinate of the `index`th of `count` evenly spaced points.
pub fn x_at(index: usize, count: usize) -> f64 {
    let span = WIDTH - LEFT - RIGHT;
    if count <= 1 {
        LEFT + span / 2.0
    } else {
        LEFT + span * index as f64 / (count - 1) as f64
    }
}

/// The y coordinate of `value` on an axis topped at `top`.
pub fn y_at(value: f64, top: f64) -> f64 {
    let span = HEIGHT - TOP - BOTTOM;
    TOP + span * (1.0 - (value / top).clamp(0.0, 1.0))
}

/// The `points` attribute of a polyline through a series' figures (gaps skipped).
pub fn polyline(values: &[Option<f64>], top: f64) -> String {
    values
        .iter()
        .enumerate()
        .filter_map(|(index, value)| {
            value.map(|value| format!("{:.1},{:.1}", x_at(index, values.len()), y_at(value, top)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The value axis: lines at 0, half and the top, each labelled.
fn grid(top: f64, unit: Unit) -> impl IntoView {
    [0.0, top / 2.0, top]
        .into_iter()
        .map(|value| {
            let y = y_at(value, top);
            view! {
                <line class="grid" x1=LEFT x2=WIDTH - RIGHT y1=y y2=y />
                <text class="axis" x=LEFT - 6.0 y=y + 4.0 text-anchor="end">{unit.format(value)}</text>
            }
        })
        .collect_view()
}

/// The label axis: the first, middle and last labels.
fn label_axis(labels: &[String]) -> impl IntoView + use<> {
    let count = labels.len();
    let mut shown: Vec<usize> = vec![0, count / 2, count.saturating_sub(1)];
    shown.dedup();
    shown
        .into_iter()
        .filter(|index| *index < count)
        .map(|index| {
            let anchor = if index == 0 && count > 1 {
                "start"
            } else if index + 1 == count && count > 1 {
                "end"
            } else {
                "middle"
            };
            view! {
                <text class="axis" x=x_at(index, count) y=HEIGHT - 8.0 text-anchor=anchor>{labels[index].clone()}</text>
            }
        })
        .collect_view()
}

/// The table of a chart's figures, folded away under the chart.
fn figures_table(labels: &[String], series: &[Series], unit: Unit) -> impl IntoView + use<> {
    let rows: Vec<(String, Vec<String>)> = labels
        .iter()
        .enumerate()
        .map(|(index, label)| {
            let cells = series
                .iter()
                .map(|line| {
                    line.values
                        .get(index)
                        .copied()
                        .flatten()
                        .map_or_else(|| "—".to_owned(), |value| unit.format(value))
                })
                .collect();
            (label.clone(), cells)
        })
        .collect();
    view! {
        <details class="figures">
            <summary>"The figures"</summary>
            <table>
                <thead>
                    <tr>
                        <th scope="col">"Day"</th>
                        {series.iter().map(|line| view! { <th scope="col">{line.name.clone()}</th> }).collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|(label, cells)| view! {
                        <tr>
                            <th scope="row">{label}</th>
                            {cells.into_iter().map(|cell| view! { <td>{cell}</td> }).collect_view()}
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </details>
    }
    .into_any()
}

/// What every chart draws around its marks.
struct Frame<'a> {
    title: &'static str,
    id: &'static str,
    labels: &'a [String],
    series: &'a [Series],
    unit: Unit,
    top: f64,
    /// Said instead of a drawing when there are no figures.
    when_empty: &'static str,
    /// The lines or bars, in the plot's coordinates.
    marks: AnyView,
    legend: Option<AnyView>,
}

/// A chart's figure: its caption; the drawing (named by its caption and a sentence summing it up, with
/// the value grid and the label axis) or the `when_empty` sentence; the legend; the table of figures.
fn frame(frame: Frame<'_>) -> AnyView {
    let Frame {
        title,
        id,
        labels,
        series,
        unit,
        top,
        when_empty,
        marks,
        legend,
    } = frame;
    let drawing = if labels.is_empty() {
        view! { <p class="hint">{when_empty}</p> }.into_any()
    } else {
        view! {
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-labelledby=format!("{id}-title {id}-summary")>
                <desc id=format!("{id}-summary")>{summary(labels, series, unit)}</desc>
                {grid(top, unit)}
                {label_axis(labels)}
                {marks}
            </svg>
        }
        .into_any()
    };
    let figures = (!labels.is_empty()).then(|| figures_table(labels, series, unit));
    view! {
        <figure class="chart" data-testid=id>
            <figcaption id=format!("{id}-title")>{title}</figcaption>
            {drawing}
            {legend}
            {figures}
        </figure>
    }
    .into_any()
}

/// A line chart of one or more series over `labels` (days, say).
#[component]
pub fn LineChart(
    /// What the chart shows (its caption and accessible name).
    title: &'static str,
    /// For tests and style.
    id: &'static str,
    /// The label of each point.
    labels: Vec<String>,
    /// The lines.
    series: Vec<Series>,
    /// What the values are.
    unit: Unit,
) -> impl IntoView {
    let max = series
        .iter()
        .flat_map(|line| line.values.iter().flatten().copied())
        .fold(0.0, f64::max);
    let top = unit.top(max);
    let lines = series
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let class = format!("series series-{}", index % 6);
            let points = polyline(&line.values, top);
            let dots = line
                .values
                .iter()
                .enumerate()
                .filter_map(|(at, value)| value.map(|value| (x_at(at, line.values.len()), y_at(value, top))))
                .map(|(cx, cy)| view! { <circle cx=format!("{cx:.1}") cy=format!("{cy:.1}") r="2.5" /> })
                .collect_view();
            view! {
                <g class=class>
                    <polyline points=points fill="none" />
                    {dots}
                </g>
            }
        })
        .collect_view();
    let legend = (series.len() > 1).then(|| {
        view! {
            <ul class="legend">
                {series.iter().enumerate().map(|(index, line)| view! {
                    <li><span class=format!("swatch series-{}", index % 6) aria-hidden="true"></span>{line.name.clone()}</li>
                }).collect_view()}
            </ul>
        }
        .into_any()
    });
    frame(Frame {
        title,
        id,
        labels: &labels,
        series: &series,
        unit,
        top,
        when_empty: "No figures yet: the server records them once an hour.",
        marks: lines.into_any(),
        legend,
    })
}

/// A bar chart: one bar per label.
#[component]
pub fn BarChart(
    /// What the chart shows (its caption and accessible name).
    title: &'static str,
    /// For tests and style.
    id: &'static str,
    /// The label of each bar.
    labels: Vec<String>,
    /// A value per bar.
    values: Vec<f64>,
    /// What the values are.
    unit: Unit,
) -> impl IntoView {
    let top = unit.top(values.iter().copied().fold(0.0, f64::max));
    let count = values.len();
    let slot = (WIDTH - LEFT - RIGHT) / count.max(1) as f64;
    // A few bars stay bars, not slabs.
    let bar = (slot * 0.7).clamp(1.0, 48.0);
    let bars = values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let y = y_at(*value, top);
            let x = LEFT + slot * index as f64 + (slot - bar) / 2.0;
            let label = format!("{}: {}", labels[index], unit.format(*value));
            view! {
                <rect x=format!("{x:.1}") y=format!("{y:.1}") width=format!("{bar:.1}") height=format!("{:.1}", HEIGHT - BOTTOM - y)>
                    <title>{label}</title>
                </rect>
            }
        })
        .collect_view();
    let series = [Series {
        name: title.to_owned(),
        values: values.iter().copied().map(Some).collect(),
    }];
    frame(Frame {
        title,
        id,
        labels: &labels,
        series: &series,
        unit,
        top,
        when_empty: "Nothing yet.",
        marks: view! { <g class="bars">{bars}</g> }.into_any(),
        legend: None,
    })
}

/// One sentence saying what a chart shows: the span, and each series' first and last figures.
pub fn summary(labels: &[String], series: &[Series], unit: Unit) -> String {
    let (Some(first), Some(last)) = (labels.first(), labels.last()) else {
        return "No figures yet.".to_owned();
    };
    let lines: Vec<String> = series
        .iter()
        .filter_map(|line| {
            let mut known = line.values.iter().flatten();
            let start = known.next()?;
            let end = known.last().unwrap_or(start);
            Some(format!(
                "{}: {} to {}",
                line.name,
                unit.format(*start),
                unit.format(*end)
            ))
        })
        .collect();
    format!("From {first} to {last}. {}.", lines.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_tops_at_a_round_figure_above_the_largest_value() {
        assert_eq!(axis_top(0.0), 1.0);
        assert_eq!(axis_top(-3.0), 1.0);
        assert_eq!(axis_top(1.0), 1.0);
        assert_eq!(axis_top(7.0), 10.0);
        assert_eq!(axis_top(1.5), 2.0);
        assert_eq!(axis_top(480.0), 500.0);
        assert_eq!(axis_top(501.0), 1000.0);
        assert_eq!(axis_top(3.2e9), 5e9);
    }

    #[test]
    fn byte_axes_top_at_a_round_number_of_binary_units_and_durations_read_naturally() {
        let gib = 1024.0 * 1024.0 * 1024.0;
        assert_eq!(Unit::Bytes.top(4.66 * gib), 5.0 * gib);
        assert_eq!(Unit::Bytes.top(700.0 * 1024.0 * 1024.0), 1000.0 * 1024.0 * 1024.0);
        assert_eq!(Unit::Bytes.top(3_000.0), 5.0 * 1024.0);
        assert_eq!(Unit::Bytes.top(500.0), 500.0);
        assert_eq!(Unit::Bytes.format(5.0 * gib), "5 GiB");
        assert_eq!(Unit::Seconds.format(0.05), "50 ms");
        assert_eq!(Unit::Seconds.format(2.25), "2.2 s");
        assert_eq!(Unit::Seconds.format(45.0), "45 s");
        assert_eq!(Unit::Seconds.format(600.0), "10 min");
        assert_eq!(Unit::Count.format(3.0), "3");
    }

    #[test]
    fn points_spread_across_the_plot_and_values_rise_upwards() {
        assert_eq!(x_at(0, 3), LEFT);
        assert_eq!(x_at(2, 3), WIDTH - RIGHT);
        assert_eq!(x_at(0, 1), LEFT + (WIDTH - LEFT - RIGHT) / 2.0);
        assert_eq!(y_at(0.0, 10.0), HEIGHT - BOTTOM);
        assert_eq!(y_at(10.0, 10.0), TOP);
        assert!(y_at(7.0, 10.0) < y_at(3.0, 10.0));
        assert_eq!(y_at(20.0, 10.0), TOP, "clamped to the plot");
    }

    #[test]
    fn a_polyline_skips_days_without_a_figure() {
        let points = polyline(&[Some(0.0), None, Some(10.0)], 10.0);
        assert_eq!(
            points,
            format!("{LEFT:.1},{:.1} {:.1},{TOP:.1}", HEIGHT - BOTTOM, WIDTH - RIGHT)
        );
    }

    #[test]
    fn the_summary_names_the_span_and_each_lines_first_and_last_figures() {
        let labels = vec!["1 Nov".to_owned(), "2 Nov".to_owned(), "3 Nov".to_owned()];
        let series = vec![
            Series {
                name: "All".to_owned(),
                values: vec![Some(1.0), Some(2.0), Some(4.0)],
            },
            Series {
                name: "Riverside".to_owned(),
                values: vec![None, Some(3.0), None],
            },
        ];
        assert_eq!(
            summary(&labels, &series, Unit::Count),
            "From 1 Nov to 3 Nov. All: 1 to 4; Riverside: 3 to 3."
        );
        assert_eq!(summary(&[], &series, Unit::Count), "No figures yet.");
    }
}
