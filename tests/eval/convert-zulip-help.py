"""Converts Zulip's help centre (the `help/` folder of zulip/zulip) into markdown articles.

Zulip (https://github.com/zulip/zulip) is Apache-2.0, copyright 2012-2015 Dropbox, Inc.,
2015- Kandra Labs, Inc., and contributors; its user help centre is served at
https://zulip.com/help/ from the markdown files in `help/`, with shared snippets in
`help/include/` pulled in by `{!name.md!}` lines and a few macros that Zulip's markdown
extensions (zerver/lib/markdown/) expand when it renders a page.

Getting the folder from a bare clone or snapshot of zulip/zulip (one article,
`integrations-overview.md`, is a symlink into `api_docs/`, so take that file too):

    git --git-dir=/path/to/zulip.git archive HEAD help api_docs/integrations-overview.md \
        | tar -x -C /tmp/zulip-src
    python3 tests/eval/convert-zulip-help.py /tmp/zulip-src/help [OUT_DIR]

(or `git ls-tree -r --name-only HEAD help/` and `git show HEAD:help/<file>` for each file).
OUT_DIR defaults to tests/eval/zulip-help/ beside this script; its .md files are replaced.

Each top-level article becomes OUT_DIR/<stem>.md:

    url: https://zulip.com/help/<stem>
    # <Title>

    <body markdown>

What the conversion does: expands `{!name.md!}` includes (recursively, at most MAX_DEPTH
deep, keeping the include line's indentation); `{start_tabs}` and `{end_tabs}` vanish, and
`{tab|key}` becomes a heading one level below the section it is in, with the label the
web page shows ("Desktop/Web", "Mobile", ...); `{settings_tab|...}` and `{relative|...}`
become the numbered steps Zulip renders for them ("Select **Personal settings**", ...);
`!!! tip ""` / `!!! warn ""` / `!!! keyboard_tip ""` boxes become a paragraph that starts
"Tip:", "Warning:" or "Keyboard tip:"; any other line that is only a `{...}` macro is
dropped; HTML comments, image lines, icons (`<i>`), and `<span>`/`<div>` tags go; `<kbd>X</kbd>`
becomes X; links to `/help/foo` (or a bare `foo`) become https://zulip.com/help/foo (other site-relative
links likewise), links into the web app (`/#settings/...`) keep only their text. Fenced code is
left as it is. Skipped: `include/`, `index.md` (the sidebar), `missing.md` (the 404 page),
and any page that is a stub (no title, or under 150 characters of body).
"""
import html, os, re, sys

SRC = sys.argv[1]
DST = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), 'zulip-help')
SITE = 'https://zulip.com'
MAX_DEPTH = 6
SKIP = {'index.md', 'missing.md'}

# Labels of `{tab|key}` (zerver/lib/markdown/tabbed_sections.py); unknown keys are title-cased.
TAB_LABELS = {
    'desktop-web': 'Desktop/Web', 'ios': 'iOS', 'android': 'Android', 'mac': 'macOS',
    'windows': 'Windows', 'linux': 'Linux', 'most-systems': 'Most systems',
    'linux-with-apt': 'Linux with APT', 'python': 'Python', 'js': 'JavaScript', 'curl': 'curl',
    'zulip-send': 'zulip-send', 'web': 'Web', 'desktop': 'Desktop', 'mobile': 'Mobile',
    'mm-default': 'Default installation', 'mm-cloud': 'Cloud instance', 'mm-docker': 'Docker',
    'mm-gitlab-omnibus': 'GitLab Omnibus', 'mm-self-hosting-cloud-export': 'Self hosting (cloud export)',
    'require-invitations': 'Require invitations', 'allow-anyone-to-join': 'Allow anyone to join',
    'restrict-by-email-domain': 'Restrict by email domain', 'zoom': 'Zoom',
    'jitsi-meet': 'Jitsi Meet', 'bigbluebutton': 'BigBlueButton', 'disable': 'Disabled',
    'chrome': 'Chrome', 'firefox': 'Firefox', 'desktop-app': 'Desktop app',
    'system-proxy-settings': 'System proxy settings', 'custom-proxy-settings': 'Custom proxy settings',
    'stream': 'From a stream view', 'not-stream': 'From other views',
    'via-recent-conversations': 'Via recent conversations', 'via-inbox-view': 'Via inbox view',
    'via-left-sidebar': 'Via left sidebar', 'via-right-sidebar': 'Via right sidebar',
    'instructions-for-all-platforms': 'Instructions for all platforms',
    'public-streams': 'Public streams', 'private-streams': 'Private streams',
    'web-public-streams': 'Web-public streams', 'via-user-card': 'Via user card',
    'via-user-profile': 'Via user profile', 'via-organization-settings': 'Via organization settings',
    'via-personal-settings': 'Via personal settings', 'via-stream-settings': 'Via stream settings',
    'default-subdomain': 'Default subdomain', 'custom-subdomain': 'Custom subdomain',
    'zulip-cloud-standard': 'Zulip Cloud Standard', 'zulip-cloud-plus': 'Zulip Cloud Plus',
    'request-sponsorship': 'Request sponsorship', 'request-education-pricing': 'Request education pricing',
    'zulip-cloud': 'Zulip Cloud', 'self-hosting': 'Self hosting', 'okta': 'Okta',
    'onelogin': 'OneLogin', 'azuread': 'AzureAD', 'keycloak': 'Keycloak', 'auth0': 'Auth0',
    'logged-in': 'If you are logged in', 'logged-out': 'If you are logged out', 'user': 'User',
    'bot': 'Bot', 'on-sign-up': 'On sign-up', 'via-paste': 'Via paste',
    'via-drag-and-drop': 'Via drag-and-drop', 'via-markdown': 'Via Markdown',
    'via-compose-box-buttons': 'Via compose box buttons', 'stream-compose': 'Compose to a stream',
    'dm-compose': 'Compose a DM', 'v8': 'Zulip Server 8.0+', 'v6': 'Zulip Server 6.0+',
    'v4': 'Zulip Server 4.0+', 'all-versions': 'All versions', 'for-a-bot': 'For a bot',
    'for-yourself': 'For yourself',
}

# `{settings_tab|key}`: (menu, tab) as zerver/lib/markdown/help_settings_links.py renders them.
SETTINGS_TABS = {
    'profile': ('Personal settings', 'Profile'),
    'account-and-privacy': ('Personal settings', 'Account & privacy'),
    'preferences': ('Personal settings', 'Preferences'),
    'notifications': ('Personal settings', 'Notifications'),
    'your-bots': ('Personal settings', 'Bots'),
    'alert-words': ('Personal settings', 'Alert words'),
    'uploaded-files': ('Personal settings', 'Uploaded files'),
    'topics': ('Personal settings', 'Topics'),
    'muted-users': ('Personal settings', 'Muted users'),
    'organization-profile': ('Organization settings', 'Organization profile'),
    'organization-settings': ('Organization settings', 'Organization settings'),
    'organization-permissions': ('Organization settings', 'Organization permissions'),
    'default-user-settings': ('Organization settings', 'Default user settings'),
    'emoji-settings': ('Organization settings', 'Custom emoji'),
    'auth-methods': ('Organization settings', 'Authentication methods'),
    'user-list-admin': ('Organization settings', 'Users'),
    'deactivated-users-admin': ('Organization settings', 'Deactivated users'),
    'bot-list-admin': ('Organization settings', 'Bots'),
    'default-streams-list': ('Organization settings', 'Default streams'),
    'linkifier-settings': ('Organization settings', 'Linkifiers'),
    'playground-settings': ('Organization settings', 'Code playgrounds'),
    'profile-field-settings': ('Organization settings', 'Custom profile fields'),
    'invites-list-admin': ('Organization settings', 'Invitations'),
    'data-exports-admin': ('Organization settings', 'Data exports'),
}
GEAR = 'Click on the **gear** icon in the upper right corner of the web or desktop app.'
# `{relative|gear|key}` items (zerver/lib/markdown/help_relative_links.py).
GEAR_ITEMS = {
    'stream-settings': 'Stream settings', 'settings': 'Personal Settings',
    'organization-settings': 'Organization settings', 'group-settings': 'Group settings',
    'stats': 'Usage statistics', 'integrations': 'Integrations', 'plans': 'Plans and pricing',
    'billing': 'Billing', 'about-zulip': 'About Zulip',
}
HELP_ITEMS = {
    'keyboard-shortcuts': 'Keyboard shortcuts', 'message-formatting': 'Message formatting',
    'search-filters': 'Search filters', 'about-zulip': 'About Zulip',
}
MESSAGE_VIEWS = {
    'drafts': ['Click on **Drafts** in the left sidebar.'],
    'scheduled': ['Click on **Scheduled messages** in the left sidebar. If you do not see this link, you have no scheduled messages.'],
    'recent': ['Click on **Recent conversations** in the left sidebar, or use the T keyboard shortcut.'],
    'all': ['Click on **All messages** in the left sidebar, or use the A keyboard shortcut.'],
    'starred': ['Click on **Starred messages** in the left sidebar, or by [searching](/help/search-for-messages) for `is:starred`.'],
    'direct': ['In the left sidebar, click the **All direct messages** icon to the right of the **Direct messages** label, or use the Shift + P keyboard shortcut.'],
    'inbox': ['Click on **Inbox** in the left sidebar, or use the Shift + I keyboard shortcut.'],
}
ADMONITIONS = {'tip': 'Tip:', 'warn': 'Warning:', 'keyboard_tip': 'Keyboard tip:'}

def settings_steps(key):
    menu, tab = SETTINGS_TABS.get(key, ('Settings', key.replace('-', ' ').capitalize()))
    return [GEAR, f'Select **{menu}**.', f'On the left, click **{tab}**.']

def relative_steps(kind, key):
    if kind == 'gear':
        return [GEAR, f'Select **{GEAR_ITEMS.get(key, key)}**.']
    if kind == 'help':
        return ['Click on the **Help menu** icon in the upper right corner of the app.',
                f'Select **{HELP_ITEMS.get(key, key)}**.']
    if kind in ('stream', 'group'):
        menu = 'Stream settings' if kind == 'stream' else 'Group settings'
        return [GEAR, f'Select **{menu}**.', f'Click **All {kind}s** in the upper left.']
    if kind == 'message':
        return MESSAGE_VIEWS.get(key, [])
    return []

INCLUDE = re.compile(r'^(\s*)((?:[-*]|\d+\.)\s+)?\{!([^!]+)!\}\s*$')

def expand(lines, depth, name):
    """Replaces include lines with the included file's lines (indented like the include; an
    include after a list marker becomes that list item's text)."""
    out = []
    for line in lines:
        m = INCLUDE.match(line)
        if not m:
            out.append(line); continue
        if depth >= MAX_DEPTH:
            print(f'{name}: includes nested deeper than {MAX_DEPTH}, dropped {m[3]}', file=sys.stderr); continue
        path = os.path.join(SRC, 'include', m[3])
        if not os.path.isfile(path):
            print(f'{name}: no include {m[3]}', file=sys.stderr); continue
        inner = expand(open(path, encoding='utf-8').read().strip('\n').splitlines(), depth + 1, name)
        marker = m[2] or ''
        for i, l in enumerate(inner):
            if i == 0:
                out.append(m[1] + marker + l)
            else:
                out.append((m[1] + ' ' * len(marker) + l) if l.strip() else '')
    return out

MACRO_LINE = re.compile(r'^\s*\{[^{}]*\}\s*$')
FENCE = re.compile(r'^\s*(```|~~~)')
IMAGE_LINE = re.compile(r'^\s*(\[?!\[[^\]]*\]\([^)]*\)(\]\([^)]*\))?|<img\b[^>]*>)\s*$')

def inline(text):
    """Clean-up of a stretch of prose (no fenced code) outside `code spans`: tags, entities, links."""
    parts = re.split(r'(`[^`\n]*`)', text)
    for i in range(0, len(parts), 2):
        s = parts[i]
        s = s.replace('{{ support_email }}', 'support@zulip.com')
        s = re.sub(r'<kbd\b[^>]*>(.*?)</kbd>', r'\1', s, flags=re.S)
        s = re.sub(r'<(i|span)\b[^>]*>\s*</(i|span)>|<img\b[^>]*>', '', s)  # icons
        s = re.sub(r'[ \t]*\((?:\s|,|\bor\b)*\)', '', s)  # the "(icon)" or "(icon, icon, or icon)" they stood in
        s = re.sub(r'</span>\s*<span\b[^>]*>', ' ', s)
        s = re.sub(r'</?(span|div|i)\b[^>]*>', '', s)
        s = re.sub(r'\[([^\]]*)\]\(/#[^)]*\)', r'\1', s)  # links into the web app: keep the text
        s = re.sub(r'\]\(\s*(/|\.\./)(?!/)', f']({SITE}/', s)
        s = re.sub(r'\]\(([a-z0-9-]+(#[^)\s]*)?)\)', rf']({SITE}/help/\1)', s)  # bare sibling article
        s = re.sub(r'(?m)^(\s*\[[^\]]+\]:\s*)/(?!/)', rf'\1{SITE}/', s)
        s = html.unescape(s) if '&' in s else s
        parts[i] = s
    return ''.join(parts)

def clean(lines):
    """Runs inline() over each stretch of lines outside fenced code."""
    out, prose, fence = [], [], None
    for line in lines:
        m = FENCE.match(line)
        if fence is None and m:
            out.append(inline('\n'.join(prose))); prose = []
            fence = m[1]; out.append(line)
        elif fence is not None:
            out.append(line)
            if m and line.strip().startswith(fence):
                fence = None
        else:
            prose.append(line)
    out.append(inline('\n'.join(prose)))
    return out

def convert(name, text):
    text = re.sub(r'<!--.*?-->', '', text, flags=re.S)
    lines = expand(text.splitlines(), 0, name)
    lines = '\n'.join(lines)
    lines = re.sub(r'<!--.*?-->', '', lines, flags=re.S).split('\n')
    out = []
    fence = None
    level = 1  # level of the last heading seen
    tab_level = None  # level of the tab headings of the tabbed section we are in
    adm = None  # (indent of the admonition line, label not yet placed)
    for line in lines:
        if fence:
            out.append(line)
            if FENCE.match(line) and line.strip().startswith(fence):
                fence = None
            continue
        # End of an admonition body: a non-blank line indented no deeper than the "!!!" line.
        if adm is not None and line.strip() and len(line) - len(line.lstrip()) <= adm[0]:
            adm = None
        if adm is not None and line.strip():
            line = line[:adm[0]] + line[adm[0] + 4:] if line[adm[0]:adm[0] + 4] == '    ' else line
            if adm[1]:
                ind = len(line) - len(line.lstrip())
                if not re.match(r'\*\*\w+:?\*\*:?', line[ind:]):  # unless it says "**Note**:" itself
                    line = line[:ind] + f'**{adm[1]}** ' + line[ind:]
                adm = (adm[0], None)
        m = FENCE.match(line)
        if m:
            fence = m[1]
            out.append(line); continue
        s = line.strip()
        ind = line[:len(line) - len(line.lstrip())]
        m = re.match(r'^!!!\s+(\w+)\s*(".*")?\s*$', s)
        if m:
            adm = (len(ind), ADMONITIONS.get(m[1], m[1].capitalize() + ':'))
            continue
        m = re.match(r'^(#{1,6})\s', s)
        if m and not ind:
            level = len(m[1])
        if s in ('{start_tabs}', '{end_tabs}'):
            tab_level = min(max(level + 1, 3), 6) if s == '{start_tabs}' else None
            out.append(''); continue
        m = re.match(r'^\{tab\|([^}]+)\}$', s)
        if m:
            label = TAB_LABELS.get(m[1], m[1].replace('-', ' ').capitalize())
            out += ['', '#' * (tab_level or min(max(level + 1, 3), 6)) + ' ' + label, '']
            continue
        m = re.search(r'\{settings_tab\|([^}]+)\}', line) or re.search(r'\{relative\|([^|}]+)\|([^}]+)\}', line)
        if m:
            steps = settings_steps(m[1]) if m[0].startswith('{settings_tab') else relative_steps(m[1], m[2])
            before, after = line[:m.start()], line[m.end():]
            if before.strip() or after.strip():  # inline use: say it in words
                out.append(before + ' '.join(steps) + after); continue
            out.append('')
            for st in steps:
                out.append(f'{ind}1. {st}')
                out.append('')
            continue
        if MACRO_LINE.match(line) or IMAGE_LINE.match(line):
            continue
        out.append(line)
    body = '\n'.join(clean(out))
    body = re.sub(r'[ \t]+\n', '\n', body)
    body = re.sub(r'\n{3,}', '\n\n', body).strip()
    m = re.match(r'# (.+)\n', body)
    if not m:
        return None, body
    return m[1].strip(), body[m.end():].strip()

os.makedirs(DST, exist_ok=True)
for f in os.listdir(DST):
    if f.endswith('.md'):
        os.remove(os.path.join(DST, f))
count = size = 0
for f in sorted(os.listdir(SRC)):
    path = os.path.join(SRC, f)
    if not f.endswith('.md') or f in SKIP or not os.path.isfile(path):
        if f.endswith('.md') and f not in SKIP:
            print('skip (missing or dangling link)', f, file=sys.stderr)
        continue
    title, body = convert(f, open(path, encoding='utf-8').read())
    if not title or len(body) < 150:
        print('skip (stub)', f, file=sys.stderr); continue
    stem = f[:-3]
    text = f'url: {SITE}/help/{stem}\n# {title}\n\n{body}\n'
    with open(os.path.join(DST, stem + '.md'), 'w', encoding='utf-8') as out:
        out.write(text)
    count += 1
    size += len(text.encode())
print(count, 'articles,', size, 'bytes')
