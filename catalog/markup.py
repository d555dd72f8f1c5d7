"""The local catalog's search pages in Amazon's search-result markup (pure: inventory in, HTML out).

Markup follows amazon.in search results: ``div[data-component-type="s-search-result"][data-asin]``,
``img.s-image`` with ``src``/``srcset`` under ``/images/I/<id>._AC_UL320_.jpg``, titles in ``h2 span``,
a "Sponsored" label on ads, ``a.s-pagination-next`` (or a disabled ``span``) for paging, and a few widget
blocks with an empty ``data-asin``. Also the robot-check page Amazon shows to suspected bots.
"""

from __future__ import annotations

import html
from urllib.parse import quote_plus

from catalog.inventory import Catalog, Product, image_path, label_for_query

PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="
LAZY_SCRIPT = """<script>
function stjLazy(){document.querySelectorAll('img[data-src]').forEach(function(i){
 var r=i.getBoundingClientRect(); if(r.top<window.innerHeight+200){i.src=i.dataset.src;i.removeAttribute('data-src');}});}
window.addEventListener('scroll',stjLazy);window.addEventListener('load',stjLazy);
</script>"""


def _result_html(index: int, product: Product, sponsored: bool, image_base: str, lazy: bool = False) -> str:
    title = html.escape(product.title)
    thumb = image_base + image_path(product.image_id)
    srcset = ", ".join(
        f"{image_base}{image_path(product.image_id, m)} {d}"
        for m, d in (("_AC_UL320_", "1x"), ("_AC_UL480_FMwebp_QL65_", "1.5x"), ("_AC_UL640_FMwebp_QL65_", "2x"))
    )
    label = (
        '<div class="a-row a-spacing-micro"><span class="puis-label-popover-default">'
        '<span class="a-color-secondary">Sponsored</span></span></div>'
        if sponsored
        else ""
    )
    kind = "sp" if sponsored else "organic"
    if lazy:
        img = f'<img class="s-image" src="{PLACEHOLDER}" data-src="{thumb}" alt="{title}" data-image-index="{index}">'
    else:
        img = f'<img class="s-image" src="{thumb}" srcset="{srcset}" alt="{title}" data-image-index="{index}">'
    return f"""
<div data-asin="{product.asin}" data-index="{index}" data-uuid="{kind}-{index}" data-component-type="s-search-result"
     class="sg-col-4-of-24 s-result-item s-asin sg-col s-widget-spacing-small">
 <div class="s-card-container s-overflow-hidden aok-relative puis-include-content-margin">
  <span class="a-declarative"><a class="a-link-normal s-no-outline" href="/dp/{product.asin}">
   <div class="a-section aok-relative s-image-square-aspect">
    {img}
   </div></a></span>
  {label}
  <div data-cy="title-recipe"><a class="a-link-normal s-link-style a-text-normal" href="/dp/{product.asin}">
   <h2 aria-label="{title}" class="a-size-base-plus a-spacing-none a-color-base a-text-normal"><span>{title}</span></h2></a>
  </div>
  <span class="a-price"><span class="a-offscreen">&#8377;{product.price}</span></span>
 </div>
</div>"""


def render_search_page(catalog: Catalog, query: str, page: int, image_base: str = "", lazy: bool = False) -> str:
    """HTML for page ``page`` of the search for ``query``.

    Args:
        catalog: the inventory.
        query: the search keywords (``k`` parameter).
        page: 1-based page number.
        image_base: scheme and host prefixed to image URLs (Amazon serves them from another host).
        lazy: photos as a placeholder ``src`` plus ``data-src``, filled in by script on scroll.
    """
    label = label_for_query(query)
    rows = catalog.results(label, page) if label else []
    pages = catalog.page_count(label) if label else 1
    body = [
        '<div data-asin="" data-index="0" data-component-type="s-impression-logger" class="s-result-item">'
        "<span>RESULTS</span></div>"
    ]
    body += [
        _result_html(index=i + 1, product=p, sponsored=sp, image_base=image_base, lazy=lazy)
        for i, (p, sp) in enumerate(rows)
    ]
    body.append('<div data-asin="" class="s-result-item s-widget"><div class="a-section">Need help?</div></div>')
    if not rows:
        body.append(f'<div class="s-no-outline"><span>No results for {html.escape(query)}.</span></div>')
    q = quote_plus(query)
    if page < pages:
        nxt = (
            f'<a href="/s?k={q}&amp;page={page + 1}" aria-label="Go to next page, page {page + 1}" '
            'class="s-pagination-item s-pagination-next s-pagination-button s-pagination-separator">Next</a>'
        )
    else:
        nxt = (
            '<span class="s-pagination-item s-pagination-next s-pagination-disabled " aria-disabled="true">Next</span>'
        )
    return f"""<!doctype html>
<html lang="en-in"><head><meta charset="utf-8"><title>Amazon.in : {html.escape(query)}</title></head>
<body><div id="search"><div class="s-main-slot s-result-list s-search-results sg-row">
{"".join(body)}
</div>
<div role="navigation"><span class="s-pagination-strip">
<span class="s-pagination-item s-pagination-selected" aria-label="Current page, page {page}">{page}</span>
{nxt}</span></div></div>{LAZY_SCRIPT if lazy else ""}</body></html>"""


ROBOT_CHECK_HTML = """<!doctype html><html><head><title>Amazon.in</title></head><body>
<div class="a-container a-padding-double-large"><div class="a-box-inner">
<h4>Enter the characters you see below</h4>
<p class="a-last">Sorry, we just need to make sure you're not a robot. For best results, please make sure your
browser is accepting cookies.</p>
<form method="get" action="/errors/validateCaptcha" name="">
<input type="hidden" name="amzn" value="stj-local"><input type="hidden" name="amzn-r" value="/">
<img src="/captcha/Captcha_stj.jpg">
<input autocomplete="off" spellcheck="false" placeholder="Type characters" id="captchacharacters"
 name="field-keywords" type="text">
<button type="submit" class="a-button-text">Continue shopping</button>
</form></div></div></body></html>"""
