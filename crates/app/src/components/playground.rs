//! The playground: model, progress, problems, chat, settings and statistics.

use yew::prelude::*;

use super::cache_panel::CachePanel;
use super::catalogue::CataloguePanel;
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
    let t = ctx.t();
    let status = ctx.state.status_word();
    let embed = ctx.embed;
    html! {
        <section class="playground" aria-label={t.playground} lang={ctx.lang.code()}>
            <div class="status-line">
                if embed {
                    <span class="embed-title">{ t.title }</span>
                }
                <span class={classes!("status", format!("status-{}", status.replace(' ', "-")))} data-testid="status" role="status">{ status }</span>
            </div>
            <ModelPicker />
            <LoadBar />
            <Notices />
            <Chat />
            <details class="panel" open={!embed}>
                <summary>{ t.sampling }</summary>
                <Settings />
            </details>
            <Stats />
            if !embed {
                <CataloguePanel />
                <Share />
                <details class="panel">
                    <summary>{ t.cache_title }</summary>
                    <CachePanel />
                </details>
            }
        </section>
    }
}
