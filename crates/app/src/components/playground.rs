//! The playground: model, progress, problems, chat, settings and statistics.

use yew::prelude::*;

use super::cache_panel::CachePanel;
use super::chat::Chat;
use super::load_bar::LoadBar;
use super::model_picker::ModelPicker;
use super::notices::Notices;
use super::settings::Settings;
use super::share::Share;
use super::stats::Stats;
use super::use_ctx;

/// Everything that runs a model.
#[function_component(Playground)]
pub fn playground() -> Html {
    let ctx = use_ctx();
    let status = ctx.state.status_word();
    html! {
        <section class="playground" aria-label="Playground">
            <div class="status-line">
                <span class={classes!("status", format!("status-{}", status.replace(' ', "-")))} data-testid="status" role="status">{ status }</span>
            </div>
            <ModelPicker />
            <LoadBar />
            <Notices />
            <Chat />
            <details class="panel" open=true>
                <summary>{ "Sampling" }</summary>
                <Settings />
            </details>
            <Stats />
            <Share />
            <details class="panel">
                <summary>{ "Browser cache" }</summary>
                <CachePanel />
            </details>
        </section>
    }
}
