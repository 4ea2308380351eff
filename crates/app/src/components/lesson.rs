//! The lesson: table of contents, sections rendered from the parsed Markdown (as Yew nodes,
//! never as an HTML string), and "Try it" blocks that run in the playground next to them.

use omp_lessons::lesson::{lesson, Block, Inline, TryIt, Variant};
use yew::prelude::*;

use super::use_ctx;
use crate::state::Action;
use crate::Ctx;

fn inlines(v: &[Inline]) -> Html {
    v.iter()
        .map(|i| match i {
            Inline::Text(t) => html! { { t.clone() } },
            Inline::Strong(c) => html! { <strong>{ inlines(c) }</strong> },
            Inline::Emph(c) => html! { <em>{ inlines(c) }</em> },
            Inline::Code(c) => html! { <code>{ c.clone() }</code> },
            Inline::Break => html! { <br /> },
            Inline::Link { href, children } => {
                if href.starts_with('#') {
                    html! { <a href={href.clone()}>{ inlines(children) }</a> }
                } else {
                    html! { <a href={href.clone()} target="_blank" rel="noopener noreferrer">{ inlines(children) }</a> }
                }
            }
        })
        .collect()
}

fn blocks(v: &[Block]) -> Html {
    v.iter()
        .map(|b| match b {
            Block::Paragraph(i) => html! { <p>{ inlines(i) }</p> },
            Block::List { ordered: true, items } => {
                html! { <ol>{ for items.iter().map(|it| html! { <li>{ blocks(it) }</li> }) }</ol> }
            }
            Block::List {
                ordered: false,
                items,
            } => html! { <ul>{ for items.iter().map(|it| html! { <li>{ blocks(it) }</li> }) }</ul> },
            Block::Quote(b) => html! { <blockquote>{ blocks(b) }</blockquote> },
            Block::Code { text, .. } => html! { <pre><code>{ text.clone() }</code></pre> },
            Block::TryIt(t) => html! { <TryBlock experiment={t.clone()} /> },
        })
        .collect()
}

#[derive(Properties, PartialEq)]
struct TryProps {
    experiment: TryIt,
}

/// Runs an experiment: its settings (and a variant's) on top of the current ones.
fn run(ctx: &Ctx, t: &TryIt, v: Option<&Variant>) {
    if t.catalogue {
        ctx.state.dispatch(Action::OpenCatalogue(true));
        if let Some(el) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("catalogue"))
        {
            el.scroll_into_view();
        }
        return;
    }
    let Some(prompt) = &t.prompt else { return };
    let params = match t.params(&ctx.state.params, v) {
        Ok(p) => p,
        Err(e) => {
            return ctx
                .state
                .dispatch(Action::Problem(omp_protocol::ErrorKind::BadRequest, e))
        }
    };
    if ctx.send_with(prompt, params, crate::History::Fresh).is_none() {
        ctx.state.dispatch(Action::Problem(
            omp_protocol::ErrorKind::BadRequest,
            ctx.t().still_loading.to_string(),
        ));
    }
}

#[function_component(TryBlock)]
fn try_block(p: &TryProps) -> Html {
    let ctx = use_ctx();
    let t = &p.experiment;
    let tx = ctx.t();
    let busy = !ctx.state.can_send();
    let button = |label: String, v: Option<Variant>, primary: bool| {
        let ctx = ctx.clone();
        let exp = t.clone();
        let onclick = Callback::from(move |_: MouseEvent| run(&ctx, &exp, v.as_ref()));
        html! {
            <button class={classes!(primary.then_some("primary"))} {onclick} disabled={busy && !exp_is_catalogue(t)}
                data-testid={format!("try-{}", t.id)}>{ label }</button>
        }
    };
    let buttons = if t.catalogue {
        button(tx.open_catalogue.to_string(), None, true)
    } else if t.variants.is_empty() {
        button(tx.run.to_string(), None, true)
    } else {
        t.variants
            .iter()
            .enumerate()
            .map(|(i, v)| button(v.label.clone(), Some(v.clone()), i == 0))
            .collect()
    };
    html! {
        <aside class="try" aria-label={format!("{}: {}", tx.try_it, t.title)} data-try={t.id.clone()}>
            <div class="try-head"><span class="badge">{ tx.try_it }</span> <strong>{ &t.title }</strong></div>
            if let Some(p) = &t.prompt {
                <blockquote class="try-prompt" lang="en">{ p.clone() }</blockquote>
            }
            <div class="buttons">{ buttons }</div>
            <p class="hint">{ &t.note }</p>
        </aside>
    }
}

fn exp_is_catalogue(t: &TryIt) -> bool {
    t.catalogue
}

/// The lesson column.
#[function_component(LessonView)]
pub fn lesson_view() -> Html {
    let ctx = use_ctx();
    let lesson = use_memo(ctx.lang, |l| lesson(*l));
    let t = ctx.t();
    let toc = lesson.sections.iter().map(|s| {
        html! {
            <li class={format!("toc-{}", s.level)}><a href={format!("#{}", s.id)}>{ &s.title }</a></li>
        }
    });
    let sections = lesson.sections.iter().map(|s| {
        let heading = if s.level == 2 {
            html! { <h2 id={s.id.clone()}>{ &s.title }</h2> }
        } else {
            html! { <h3 id={s.id.clone()}>{ &s.title }</h3> }
        };
        html! {
            <section class={format!("level-{}", s.level)} data-section={s.id.clone()}>
                { heading }
                { blocks(&s.blocks) }
            </section>
        }
    });
    html! {
        <article class="lesson" lang={ctx.lang.code()} aria-label={t.lesson} data-testid="lesson">
            <h1 class="lesson-title">{ &lesson.title }</h1>
            <p class="summary">{ &lesson.summary }</p>
            <nav class="toc" aria-label={t.contents}>
                <h2>{ t.contents }</h2>
                <ol>{ for toc }</ol>
            </nav>
            { for sections }
        </article>
    }
}
