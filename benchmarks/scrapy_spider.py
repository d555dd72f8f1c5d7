"""A Scrapy spider for the local catalog, for the side-by-side benchmark only (run by benchmarks/scrape.py).

Runs in its own virtualenv (.venv-scrapy) and imports nothing from STJ. Same job as STJ's scraper: follow
each query's pagination, skip sponsored results, save each full-size photo once via ImagesPipeline
(which verifies and re-encodes to RGB JPEG), with the same concurrency and per-host settings.

Usage: python scrapy_spider.py BASE_URL OUT_DIR CONCURRENCY MAX_PAGES QUERY [QUERY ...]
"""

import json
import re
import sys
import time

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.pipelines.images import ImagesPipeline

SIZE_MODIFIER = re.compile(r"\._[^/]*?_\.(jpe?g|png|webp)$")


class CatalogSpider(scrapy.Spider):
    name = "catalog"

    def __init__(self, base_url, queries, max_pages, **kw):
        super().__init__(**kw)
        self.start_urls = [f"{base_url}/s?k={q.replace(' ', '+')}" for q in queries]
        self.max_pages = max_pages
        self.pages = 0

    def parse(self, response, page=1):
        self.pages += 1
        urls = []
        for result in response.css('div[data-component-type="s-search-result"]'):
            if not result.attrib.get("data-asin"):
                continue
            if result.xpath('.//span[normalize-space(text())="Sponsored"]'):
                continue
            src = result.css("img.s-image::attr(src)").get()
            if src:
                urls.append(SIZE_MODIFIER.sub(lambda m: "." + m.group(1), response.urljoin(src)))
        if urls:
            yield {"image_urls": urls}
        nxt = response.css("a.s-pagination-next::attr(href)").get()
        if nxt and page < self.max_pages:
            yield response.follow(nxt, callback=self.parse, cb_kwargs={"page": page + 1})


def main() -> None:
    base_url, out_dir, concurrency, max_pages, *queries = sys.argv[1:]
    process = CrawlerProcess(
        settings={
            "ITEM_PIPELINES": {ImagesPipeline: 1},
            "IMAGES_STORE": out_dir,
            "IMAGES_MIN_WIDTH": 100,
            "IMAGES_MIN_HEIGHT": 100,
            "CONCURRENT_REQUESTS": int(concurrency),
            "CONCURRENT_REQUESTS_PER_DOMAIN": int(concurrency),
            "DOWNLOAD_DELAY": 0,
            "ROBOTSTXT_OBEY": True,
            "RETRY_ENABLED": True,
            "LOG_LEVEL": "ERROR",
            "TELNETCONSOLE_ENABLED": False,
        }
    )
    crawler = process.create_crawler(CatalogSpider)
    started = time.monotonic()
    process.crawl(crawler, base_url=base_url, queries=queries, max_pages=int(max_pages))
    process.start()
    stats = crawler.stats.get_stats()
    print(
        json.dumps(
            {
                "seconds": time.monotonic() - started,
                "pages": crawler.spider.pages,
                "images": stats.get("file_status_count/downloaded", 0),
            }
        )
    )


if __name__ == "__main__":
    main()
