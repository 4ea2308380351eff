//! The model catalogue: the lesson's families as real GGUF files, filterable by task, licence
//! and size, each with a browser-fit verdict and the lesson's five openness criteria.

use omp_lessons::catalogue::{all_tasks, manifest_models, Fit, ModelEntry, SizeClass, Status};
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use super::{fmt_bytes, use_ctx};
use crate::catalogue_source;
use crate::state::Action;

#[derive(Clone, PartialEq, Default)]
struct Filters {
    task: String,
    license: String,
    size: String,
}

impl Filters {
    fn keeps(&self, m: &ModelEntry) -> bool {
        (self.task.is_empty() || m.tasks.contains(&self.task))
            && (self.license.is_empty() || m.license == self.license)
            && match self.size.as_str() {
                "small" => m.size_class() == SizeClass::Small,
                "medium" => m.size_class() == SizeClass::Medium,
                "large" => m.size_class() == SizeClass::Large,
                _ => true,
            }
    }
}

/// The catalogue panel.
#[function_component(CataloguePanel)]
pub fn catalogue_panel() -> Html {
    let ctx = use_ctx();
    let t = ctx.t();
    let filters = use_state(Filters::default);
    let models = manifest_models();
    let (convert, compact_kv) = (ctx.state.convert, ctx.state.compact_kv);

    let select = |id: &'static str,
                  label: &'static str,
                  options: Vec<(String, String)>,
                  get: fn(&Filters) -> &String,
                  set: fn(&mut Filters, String)| {
        let current = get(&filters).clone();
        let handle = filters.clone();
        let onchange = Callback::from(move |e: Event| {
            if let Some(s) = e.target_dyn_into::<HtmlSelectElement>() {
                let mut f = (*handle).clone();
                set(&mut f, s.value());
                handle.set(f);
            }
        });
        html! {
            <div class="filter">
                <label for={id}>{ label }</label>
                <select id={id} {onchange} data-testid={id}>
                    <option value="" selected={current.is_empty()}>{ t.any }</option>
                    { for options.into_iter().map(|(v, l)| html! { <option value={v.clone()} selected={current == v}>{ l }</option> }) }
                </select>
            </div>
        }
    };
    let mut licenses: Vec<String> = models.iter().map(|m| m.license.clone()).collect();
    licenses.sort();
    licenses.dedup();

    let shown: Vec<&ModelEntry> = models.iter().filter(|m| filters.keeps(m)).collect();
    let rows = shown.iter().map(|m| {
        let fit = m.fit(convert, compact_kv);
        let verdict = match fit {
            Fit::Comfortable => t.fit_comfortable,
            Fit::Tight => t.fit_tight,
            Fit::TooLarge => t.fit_too_large,
        };
        let loadable = m.loadable(convert, compact_kv);
        let why_not = if !m.runnable {
            Some(t.not_supported.replace("{arch}", &m.architecture))
        } else if fit == Fit::TooLarge {
            Some(format!("{} ({} {})", t.fit_too_large, t.about, fmt_bytes(m.estimate_bytes(convert, compact_kv))))
        } else {
            None
        };
        let load = {
            let ctx = ctx.clone();
            let entry = (*m).clone();
            Callback::from(move |_: MouseEvent| {
                if entry.loadable(ctx.state.convert, ctx.state.compact_kv) {
                    ctx.load(catalogue_source(&entry));
                }
            })
        };
        let checks = m.openness.criteria().into_iter().zip(t.criteria).map(|((_, c), name)| {
            let (mark, word, class) = match c.status {
                Status::Yes => ("✓", t.yes, "yes"),
                Status::Partial => ("◐", t.partial, "partial"),
                Status::No => ("✗", t.no, "no"),
            };
            html! {
                <li class={class}>
                    <span aria-hidden="true">{ mark }</span>{ " " }{ name }{ ": " }
                    <a href={c.source.clone()} target="_blank" rel="noopener noreferrer">{ word }</a>
                </li>
            }
        });
        let size = if m.bytes_exact { fmt_bytes(m.bytes) } else { format!("{} {}", t.about, fmt_bytes(m.bytes)) };
        let busy = ctx.state.running.is_some();
        html! {
            <li class={classes!("model", (!loadable).then_some("unavailable"))} data-model={m.id.clone()}>
                <h3><a href={m.page.clone()} target="_blank" rel="noopener noreferrer">{ &m.name }</a></h3>
                <dl>
                    <dt>{ t.family }</dt><dd>{ &m.family }</dd>
                    <dt>{ t.parameters }</dt><dd>{ format!("{:.0}M", m.parameters as f64 / 1e6) }</dd>
                    <dt>{ t.quantization }</dt><dd>{ &m.quantization }</dd>
                    <dt>{ t.download }</dt><dd>{ size }</dd>
                    <dt>{ t.license }</dt><dd><a href={m.license_url.clone()} target="_blank" rel="noopener noreferrer">{ &m.license }</a></dd>
                    <dt>{ t.tasks }</dt><dd>{ m.tasks.join(", ") }</dd>
                    <dt>{ t.fits }</dt><dd class={format!("fit-{fit:?}").to_lowercase()}>{ format!("{verdict} ({} {})", t.about, fmt_bytes(m.estimate_bytes(convert, compact_kv))) }</dd>
                </dl>
                <details class="openness">
                    <summary>{ t.is_it_open }{ if m.openness.fully_open() { format!(" — {}", t.open_source) } else { String::new() } }</summary>
                    <ul>{ for checks }</ul>
                </details>
                if let Some(why) = why_not {
                    <p class="why-not" data-testid="why-not">{ why }</p>
                }
                <button onclick={load} disabled={!loadable || busy} data-testid={format!("load-{}", m.id)}>{ t.load }</button>
            </li>
        }
    });

    let open = ctx.state.catalogue_open;
    let ontoggle = {
        let ctx = ctx.clone();
        Callback::from(move |e: Event| {
            if let Some(d) = e.target_dyn_into::<web_sys::HtmlDetailsElement>() {
                if d.open() != ctx.state.catalogue_open {
                    ctx.state.dispatch(Action::OpenCatalogue(d.open()));
                }
            }
        })
    };
    html! {
        <details class="panel catalogue" id="catalogue" open={open} {ontoggle} data-testid="catalogue">
            <summary>{ t.catalogue }</summary>
            <p class="hint">{ t.catalogue_intro }</p>
            <div class="filters">
                { select("filter-task", t.task, all_tasks().into_iter().map(|x| (x.clone(), x)).collect(), |f| &f.task, |f, v| f.task = v) }
                { select("filter-license", t.license, licenses.into_iter().map(|x| (x.clone(), x)).collect(), |f| &f.license, |f, v| f.license = v) }
                { select("filter-size", t.size, vec![("small".into(), t.small.into()), ("medium".into(), t.medium.into()), ("large".into(), t.large.into())], |f| &f.size, |f, v| f.size = v) }
            </div>
            if shown.is_empty() {
                <p>{ t.no_match }</p>
            } else {
                <ul class="models">{ for rows }</ul>
            }
        </details>
    }
}
