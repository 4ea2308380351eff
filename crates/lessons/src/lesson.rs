//! Lessons: Markdown with front matter, parsed with pulldown-cmark into a small document tree
//! that the app renders as Yew nodes (never as an HTML string). Raw HTML in a lesson file is
//! kept as text, so a lesson cannot inject markup or script.
//!
//! Sections are `##` headings (and `###` subsections) with explicit anchors, `## Title {#id}`,
//! so both languages share the same ids. A fenced block with the info string `try` holds a JSON
//! "Try it" experiment.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde::Deserialize;

use omp_protocol::SamplingParams;

/// Lesson languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English.
    En,
    /// Korean.
    Ko,
}

impl Lang {
    /// `en` or `ko`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ko => "ko",
        }
    }

    /// Parses `en`/`ko` (and regional forms like `ko-KR`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.to_ascii_lowercase();
        if s == "en" || s.starts_with("en-") {
            Some(Lang::En)
        } else if s == "ko" || s.starts_with("ko-") {
            Some(Lang::Ko)
        } else {
            None
        }
    }

    /// Both languages.
    pub const ALL: [Lang; 2] = [Lang::Ko, Lang::En];
}

/// Inline content.
#[derive(Debug, Clone, PartialEq)]
pub enum Inline {
    /// Plain text.
    Text(String),
    /// `**strong**`
    Strong(Vec<Inline>),
    /// `*emphasis*`
    Emph(Vec<Inline>),
    /// `` `code` ``
    Code(String),
    /// A link.
    Link {
        /// Target.
        href: String,
        /// Link text.
        children: Vec<Inline>,
    },
    /// A line break.
    Break,
}

/// Block content.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A paragraph.
    Paragraph(Vec<Inline>),
    /// A list.
    List {
        /// Numbered or bulleted.
        ordered: bool,
        /// Items, each a list of blocks.
        items: Vec<Vec<Block>>,
    },
    /// A quotation.
    Quote(Vec<Block>),
    /// Preformatted code.
    Code {
        /// Info string.
        lang: String,
        /// Contents.
        text: String,
    },
    /// An experiment to run in the playground.
    TryIt(TryIt),
}

/// One variant of an experiment (a button with its own settings).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Variant {
    /// Button label.
    pub label: String,
    /// Settings that override the experiment's.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// A "Try it" experiment: a prompt and settings to run in the playground, or a pointer to the
/// model catalogue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TryIt {
    /// Stable id (the same in every language).
    pub id: String,
    /// Title.
    pub title: String,
    /// Prompt to run.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Sampling settings to apply (names as in [`SamplingParams`]).
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Alternative runs with other settings.
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// What to look for.
    #[serde(default)]
    pub note: String,
    /// Opens the model catalogue instead of running a prompt.
    #[serde(default)]
    pub catalogue: bool,
}

impl TryIt {
    /// `base` with this experiment's settings (and then `variant`'s) applied.
    pub fn params(&self, base: &SamplingParams, variant: Option<&Variant>) -> Result<SamplingParams, String> {
        let mut v = serde_json::to_value(base).map_err(|e| e.to_string())?;
        let obj = v.as_object_mut().ok_or("settings are not an object")?;
        for (k, val) in self
            .params
            .iter()
            .chain(variant.iter().flat_map(|v| v.params.iter()))
        {
            if !obj.contains_key(k) {
                return Err(format!("unknown setting {k:?}"));
            }
            obj.insert(k.clone(), val.clone());
        }
        let p: SamplingParams = serde_json::from_value(v).map_err(|e| e.to_string())?;
        p.validate()?;
        Ok(p)
    }
}

/// A section (`##`) or subsection (`###`).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Anchor id.
    pub id: String,
    /// 2 for sections, 3 for subsections.
    pub level: u8,
    /// Heading text.
    pub title: String,
    /// Contents up to the next heading.
    pub blocks: Vec<Block>,
}

/// A parsed lesson.
#[derive(Debug, Clone, PartialEq)]
pub struct Lesson {
    /// Language.
    pub lang: Lang,
    /// Title.
    pub title: String,
    /// One-sentence summary.
    pub summary: String,
    /// Sections in order.
    pub sections: Vec<Section>,
}

impl Lesson {
    /// Every link target in the lesson.
    pub fn links(&self) -> Vec<String> {
        fn inl(v: &[Inline], out: &mut Vec<String>) {
            for i in v {
                match i {
                    Inline::Link { href, children } => {
                        out.push(href.clone());
                        inl(children, out);
                    }
                    Inline::Strong(c) | Inline::Emph(c) => inl(c, out),
                    _ => {}
                }
            }
        }
        fn blk(v: &[Block], out: &mut Vec<String>) {
            for b in v {
                match b {
                    Block::Paragraph(i) => inl(i, out),
                    Block::List { items, .. } => items.iter().for_each(|it| blk(it, out)),
                    Block::Quote(b) => blk(b, out),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        for s in &self.sections {
            blk(&s.blocks, &mut out);
        }
        out
    }

    /// Every experiment in order.
    pub fn experiments(&self) -> Vec<&TryIt> {
        self.sections
            .iter()
            .flat_map(|s| s.blocks.iter())
            .filter_map(|b| match b {
                Block::TryIt(t) => Some(t),
                _ => None,
            })
            .collect()
    }
}

/// Parses a lesson file.
pub fn parse(source: &str) -> Result<Lesson, String> {
    let (front, body) = split_front_matter(source)?;
    let get = |k: &str| {
        front
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("front matter lacks {k:?}"))
    };
    let lang = Lang::parse(&get("lang")?).ok_or("front matter: unknown lang")?;
    let title = get("title")?;
    let summary = get("summary")?;

    let mut sections: Vec<Section> = Vec::new();
    let mut b = Builder::default();
    let parser = Parser::new_ext(
        body,
        Options::ENABLE_HEADING_ATTRIBUTES | Options::ENABLE_STRIKETHROUGH,
    );
    let mut heading: Option<(u8, Option<String>, String)> = None;
    for ev in parser {
        match ev {
            Event::Start(Tag::Heading { level, id, .. }) => {
                let lvl = match level {
                    HeadingLevel::H2 => 2,
                    HeadingLevel::H3 => 3,
                    other => return Err(format!("only ## and ### headings are used, found {other:?}")),
                };
                heading = Some((lvl, id.map(|s| s.to_string()), String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                let Some((level, id, title)) = heading.take() else {
                    continue;
                };
                let id = id.ok_or_else(|| format!("heading {title:?} has no {{#id}}"))?;
                if let Some(last) = sections.last_mut() {
                    last.blocks.append(&mut b.finish());
                } else if !b.finish().is_empty() {
                    return Err("text before the first section".into());
                }
                sections.push(Section {
                    id,
                    level,
                    title: title.trim().to_string(),
                    blocks: Vec::new(),
                });
            }
            Event::Text(t) | Event::Code(t) if heading.is_some() => {
                if let Some((_, _, title)) = heading.as_mut() {
                    title.push_str(&t);
                }
            }
            other => b.event(other)?,
        }
    }
    if let Some(last) = sections.last_mut() {
        last.blocks.append(&mut b.finish());
    }
    Ok(Lesson {
        lang,
        title,
        summary,
        sections,
    })
}

/// `key: value` lines between the `---` fences, in order.
type FrontMatter = Vec<(String, String)>;

fn split_front_matter(src: &str) -> Result<(FrontMatter, &str), String> {
    let rest = src
        .strip_prefix("---\n")
        .ok_or("a lesson starts with front matter (---)")?;
    let end = rest.find("\n---\n").ok_or("front matter is not closed")?;
    let front = rest[..end]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("front matter line {l:?} is not key: value"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((front, &rest[end + 5..]))
}

/// Builds blocks from events with a stack of open containers.
#[derive(Default)]
struct Builder {
    /// Finished top-level blocks.
    blocks: Vec<Block>,
    /// Open containers.
    stack: Vec<Open>,
}

enum Open {
    Paragraph(Vec<Inline>),
    Strong(Vec<Inline>),
    Emph(Vec<Inline>),
    Link(String, Vec<Inline>),
    List(bool, Vec<Vec<Block>>),
    Item(Vec<Block>, Vec<Inline>),
    Quote(Vec<Block>),
    Code(String, String),
}

impl Builder {
    fn finish(&mut self) -> Vec<Block> {
        std::mem::take(&mut self.blocks)
    }

    fn push_inline(&mut self, i: Inline) {
        match self.stack.last_mut() {
            Some(
                Open::Paragraph(v) | Open::Strong(v) | Open::Emph(v) | Open::Link(_, v) | Open::Item(_, v),
            ) => v.push(i),
            Some(Open::Code(_, text)) => {
                if let Inline::Text(t) = i {
                    text.push_str(&t)
                }
            }
            _ => self.push_block(Block::Paragraph(vec![i])),
        }
    }

    fn push_block(&mut self, b: Block) {
        match self.stack.last_mut() {
            Some(Open::Item(blocks, inl)) => {
                if !inl.is_empty() {
                    blocks.push(Block::Paragraph(std::mem::take(inl)));
                }
                blocks.push(b)
            }
            Some(Open::Quote(blocks)) => blocks.push(b),
            _ => self.blocks.push(b),
        }
    }

    fn event(&mut self, ev: Event<'_>) -> Result<(), String> {
        match ev {
            Event::Start(tag) => self.stack.push(match tag {
                Tag::Paragraph => Open::Paragraph(Vec::new()),
                Tag::Strong => Open::Strong(Vec::new()),
                Tag::Emphasis => Open::Emph(Vec::new()),
                Tag::Link { dest_url, .. } => Open::Link(dest_url.to_string(), Vec::new()),
                Tag::List(start) => Open::List(start.is_some(), Vec::new()),
                Tag::Item => Open::Item(Vec::new(), Vec::new()),
                Tag::BlockQuote(_) => Open::Quote(Vec::new()),
                Tag::CodeBlock(kind) => Open::Code(
                    match kind {
                        CodeBlockKind::Fenced(info) => info.to_string(),
                        CodeBlockKind::Indented => String::new(),
                    },
                    String::new(),
                ),
                Tag::Strikethrough => Open::Emph(Vec::new()),
                // Raw HTML blocks become paragraphs of text.
                Tag::HtmlBlock => Open::Paragraph(Vec::new()),
                other => return Err(format!("unsupported Markdown element {other:?}")),
            }),
            Event::End(_) => {
                let Some(open) = self.stack.pop() else {
                    return Ok(());
                };
                match open {
                    Open::Paragraph(v) => self.push_block(Block::Paragraph(v)),
                    Open::Strong(v) => self.push_inline(Inline::Strong(v)),
                    Open::Emph(v) => self.push_inline(Inline::Emph(v)),
                    Open::Link(href, v) => self.push_inline(Inline::Link { href, children: v }),
                    Open::List(ordered, items) => self.push_block(Block::List { ordered, items }),
                    Open::Item(mut blocks, inl) => {
                        if !inl.is_empty() {
                            blocks.push(Block::Paragraph(inl));
                        }
                        match self.stack.last_mut() {
                            Some(Open::List(_, items)) => items.push(blocks),
                            _ => return Err("list item outside a list".into()),
                        }
                    }
                    Open::Quote(b) => self.push_block(Block::Quote(b)),
                    Open::Code(lang, text) => {
                        if lang == "try" {
                            let t: TryIt = serde_json::from_str(&text)
                                .map_err(|e| format!("a try block is not valid JSON: {e}"))?;
                            self.push_block(Block::TryIt(t));
                        } else {
                            self.push_block(Block::Code { lang, text });
                        }
                    }
                }
            }
            Event::Text(t) => self.push_inline(Inline::Text(t.to_string())),
            Event::Code(t) => self.push_inline(Inline::Code(t.to_string())),
            // Raw HTML stays text: a lesson cannot inject markup.
            Event::Html(t) | Event::InlineHtml(t) => self.push_inline(Inline::Text(t.to_string())),
            Event::SoftBreak => self.push_inline(Inline::Text(" ".into())),
            Event::HardBreak => self.push_inline(Inline::Break),
            Event::Rule => {}
            other => return Err(format!("unsupported Markdown element {other:?}")),
        }
        Ok(())
    }
}

const EN: &str = include_str!("../content/open-models.en.md");
const KO: &str = include_str!("../content/open-models.ko.md");

/// The lesson in a language. The files are part of the source tree and parsed by the tests, so
/// a parse failure here is a bug caught before release; it yields an empty lesson.
pub fn lesson(lang: Lang) -> Lesson {
    let src = match lang {
        Lang::En => EN,
        Lang::Ko => KO,
    };
    parse(src).unwrap_or_else(|e| Lesson {
        lang,
        title: format!("lesson error: {e}"),
        summary: String::new(),
        sections: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
