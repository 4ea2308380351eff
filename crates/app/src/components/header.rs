//! Title, tagline and the language switch.

use omp_lessons::lesson::Lang;
use yew::prelude::*;

use super::use_ctx;

/// The page header.
#[function_component(Header)]
pub fn header() -> Html {
    let ctx = use_ctx();
    let t = ctx.t();
    let buttons = Lang::ALL.iter().map(|&l| {
        let set = ctx.set_lang.clone();
        let pressed = l == ctx.lang;
        let label = match l {
            Lang::Ko => "한국어",
            Lang::En => "English",
        };
        html! {
            <button class={classes!("lang", pressed.then_some("current"))} aria-pressed={pressed.to_string()}
                lang={l.code()} onclick={Callback::from(move |_| set.emit(l))} data-testid={format!("lang-{}", l.code())}>
                { label }
            </button>
        }
    });
    let skip = Callback::from(|e: MouseEvent| {
        e.prevent_default();
        if let Some(el) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("prompt"))
            .and_then(|el| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(el).ok())
        {
            let _ = el.focus();
        }
    });
    html! {
        <header class="top">
            <a class="skip" href="#prompt" onclick={skip} data-testid="skip">{ t.skip }</a>
            <div class="titles">
                <h1>{ t.title }</h1>
                <p class="tagline">{ t.tagline }</p>
            </div>
            <nav class="langs" aria-label={t.language}>{ for buttons }</nav>
        </header>
    }
}
