use super::*;

fn both() -> (Lesson, Lesson) {
    (
        parse(KO).expect("the Korean lesson parses"),
        parse(EN).expect("the English lesson parses"),
    )
}

/// Every section of the seed lesson, in its order (subsections of the model tour included).
const SEED_SECTIONS: &[&str] = &[
    "intro",
    "goals",
    "what-is-open",
    "benefits",
    "families",
    "llama2",
    "mistral",
    "falcon",
    "choose",
    "next",
];

#[test]
fn both_languages_have_the_seed_sections_in_the_same_order() {
    let (ko, en) = both();
    for l in [&ko, &en] {
        let ids: Vec<&str> = l.sections.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, SEED_SECTIONS, "{:?}", l.lang);
        assert!(l
            .sections
            .iter()
            .all(|s| !s.title.is_empty() && !s.blocks.is_empty()));
    }
    let levels = |l: &Lesson| l.sections.iter().map(|s| s.level).collect::<Vec<_>>();
    assert_eq!(levels(&ko), levels(&en));
    assert_eq!(ko.lang, Lang::Ko);
    assert_eq!(en.lang, Lang::En);
}

#[test]
fn every_link_is_well_formed_and_the_seed_links_carry_over() {
    let (ko, en) = both();
    for l in [&ko, &en] {
        let links = l.links();
        assert!(!links.is_empty());
        for href in &links {
            let ok = if let Some(anchor) = href.strip_prefix('#') {
                l.sections.iter().any(|s| s.id == anchor)
            } else {
                let rest = href.strip_prefix("https://").unwrap_or("");
                let host = rest.split('/').next().unwrap_or("");
                host.contains('.')
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                    && !href.contains(char::is_whitespace)
                    && !href.contains("WT.mc_id")
            };
            assert!(ok, "{:?}: malformed link {href:?}", l.lang);
        }
        for must in [
            "https://opensource.org/osd",
            "https://huggingface.co/allenai/OLMo-7B",
            "https://huggingface.co/chat",
            "https://huggingface.co/meta-llama",
            "https://huggingface.co/elyza/ELYZA-japanese-Llama-2-7b",
            "https://huggingface.co/TencentARC/LLaMA-Pro-8B",
            "https://huggingface.co/mistralai",
            "https://huggingface.co/BioMistral/BioMistral-7B",
            "https://huggingface.co/nvidia/OpenMath-Mistral-7B-v0.1-hf",
            "https://huggingface.co/tiiuae",
            "https://huggingface.co/OpenAssistant/falcon-40b-sft-top1-560",
            "https://huggingface.co/nomic-ai/gpt4all-falcon",
            "https://artificialanalysis.ai/",
            "https://ai.azure.com",
            "https://aka.ms/genai-collection",
        ] {
            assert!(
                links.iter().any(|h| h == must),
                "{:?} lacks the link {must}",
                l.lang
            );
        }
    }
    // The same links in both languages.
    let mut a = ko.links();
    let mut b = en.links();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn experiments_match_across_languages_and_their_settings_are_valid() {
    let (ko, en) = both();
    let ids = |l: &Lesson| l.experiments().iter().map(|t| t.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&ko), ids(&en));
    assert!(ids(&en).len() >= 4);
    for l in [&ko, &en] {
        for t in l.experiments() {
            assert!(!t.title.is_empty() && !t.note.is_empty());
            assert!(t.catalogue || t.prompt.is_some(), "{} runs something", t.id);
            let base = SamplingParams::default();
            t.params(&base, None).unwrap_or_else(|e| panic!("{}: {e}", t.id));
            for v in &t.variants {
                t.params(&base, Some(v))
                    .unwrap_or_else(|e| panic!("{} / {}: {e}", t.id, v.label));
            }
        }
    }
    // Prompts and settings are the same in both languages (only the words around them differ).
    for (a, b) in ko.experiments().iter().zip(en.experiments()) {
        assert_eq!(a.prompt, b.prompt);
        assert_eq!(a.params, b.params);
        assert_eq!(a.variants.len(), b.variants.len());
    }
    let seed = en.experiments().into_iter().find(|t| t.id == "seed").unwrap();
    let p = seed.params(&SamplingParams::default(), None).unwrap();
    assert_eq!((p.temperature, p.seed), (1.0, 7));
}

#[test]
fn raw_html_stays_text() {
    let src = "---\nlang: en\ntitle: t\nsummary: s\n---\n\n## A {#a}\n\n<script>alert(1)</script>\n\nHi <b>there</b>.\n";
    let l = parse(src).unwrap();
    let text = format!("{:?}", l.sections[0].blocks);
    assert!(text.contains("Text(\"<script>alert(1)</script>"), "{text}");
    assert!(text.contains("Text(\"<b>\")"), "{text}");
}

#[test]
fn structure_errors_are_reported() {
    assert!(parse("no front matter").is_err());
    assert!(parse("---\nlang: en\ntitle: t\nsummary: s\n---\n## No id\n")
        .unwrap_err()
        .contains("no {#id}"));
    assert!(parse("---\nlang: xx\ntitle: t\nsummary: s\n---\n").is_err());
    let bad = "---\nlang: en\ntitle: t\nsummary: s\n---\n## A {#a}\n\n```try\n{not json}\n```\n";
    assert!(parse(bad).unwrap_err().contains("try block"));
    let t: TryIt = serde_json::from_str(r#"{"id":"x","title":"t","params":{"warmth":1}}"#).unwrap();
    assert!(t
        .params(&SamplingParams::default(), None)
        .unwrap_err()
        .contains("warmth"));
}
