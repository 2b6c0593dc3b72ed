"""Converts the Cargo book's HTML pages (rustup's rust-docs) into markdown articles."""
import html, os, re, sys
from html.parser import HTMLParser

SRC = sys.argv[1]
DST = sys.argv[2]

class Main(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.inside = 0
        self.out = []
        self.pre = 0
        self.skip = 0
        self.list_depth = 0
        self.title = None
        self.in_h1 = False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'main':
            self.inside += 1
            return
        if not self.inside:
            return
        if tag in ('script', 'style', 'nav', 'button'):
            self.skip += 1
        if self.skip:
            return
        if tag in ('h1','h2','h3','h4','h5'):
            self.out.append('\n\n' + '#' * int(tag[1]) + ' ')
            if tag == 'h1': self.in_h1 = True; self.h1buf = []
        elif tag == 'p':
            self.out.append('\n\n')
        elif tag == 'pre':
            self.pre += 1
            self.out.append('\n\n```\n')
        elif tag == 'li':
            self.out.append('\n' + '  ' * max(self.list_depth - 1, 0) + '- ')
        elif tag in ('ul','ol'):
            self.list_depth += 1
            self.out.append('\n')
        elif tag == 'br':
            self.out.append('\n')
        elif tag in ('dt',):
            self.out.append('\n\n')
        elif tag in ('dd',):
            self.out.append('\n')
        elif tag == 'tr':
            self.out.append('\n')
        elif tag in ('td', 'th'):
            self.out.append(' | ')
        elif tag == 'code' and not self.pre:
            self.out.append('`')
    def handle_endtag(self, tag):
        if tag == 'main':
            self.inside -= 1
            return
        if not self.inside:
            return
        if tag in ('script', 'style', 'nav', 'button'):
            self.skip -= 1
            return
        if self.skip:
            return
        if tag == 'pre':
            self.pre -= 1
            self.out.append('\n```\n')
        elif tag in ('ul','ol'):
            self.list_depth -= 1
            self.out.append('\n')
        elif tag == 'code' and not self.pre:
            self.out.append('`')
        elif tag == 'h1':
            self.in_h1 = False
            self.title = ''.join(self.h1buf).strip()
    def handle_data(self, data):
        if not self.inside or self.skip:
            return
        if not self.pre:
            data = re.sub(r'\s+', ' ', data)
        if self.in_h1:
            self.h1buf.append(data)
        self.out.append(data)

count = 0
for root, _, files in os.walk(SRC):
    for f in sorted(files):
        if not f.endswith('.html'): continue
        rel = os.path.relpath(os.path.join(root, f), SRC)
        if rel in ('print.html', 'toc.html', 'index.html', 'CHANGELOG.html', '404.html'): continue
        text = open(os.path.join(root, f), encoding='utf-8').read()
        p = Main(); p.feed(text)
        body = ''.join(p.out)
        body = re.sub(r'[ \t]+\n', '\n', body)
        body = re.sub(r'\n{3,}', '\n\n', body).strip()
        body = body.replace('``` ', '```')
        if not p.title or len(body) < 200:
            print('skip', rel, file=sys.stderr); continue
        stem = os.environ['BOOK'] + '--' + rel[:-5].replace('/', '--')
        url = 'https://doc.rust-lang.org/' + os.environ['BOOK'] + '/' + rel
        with open(os.path.join(DST, stem + '.md'), 'w') as out:
            out.write(f'url: {url}\n\n{body}\n')
        count += 1
print(count, 'articles')
