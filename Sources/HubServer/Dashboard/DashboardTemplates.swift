/// The dashboard's Mustache templates, stylesheet and script, compiled into the binary (a hub copied to
/// another machine needs no resource folder). `{{x}}` escapes HTML; no template uses `{{{x}}}` on anything
/// a user typed — the layout's `{{{body}}}` is a page these templates rendered.
enum DashboardTemplates {
    static let all: [(String, String)] = [
        ("layout", layout), ("login", login), ("overview", overview), ("labels", labels), ("label", label), ("review", review), ("image", image), ("upload", upload), ("batches", batches), ("training", training), ("trainingJob", trainingJob), ("models", models), ("quests", quests), ("imported", imported), ("error", error),
    ]

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Deep Images Hub</title>
        <link rel="stylesheet" href="/assets/app.css">
        <script src="/assets/app.js" defer></script>
        </head>
        <body>
        <header class="bar">
          <a class="brand" href="/">Deep Images Hub</a>
          {{#user}}
          <nav aria-label="Main">
            {{#nav}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{name}}</a>{{/nav}}
          </nav>
          <form class="signout" method="post" action="/logout">
            <span class="who">{{name}} · {{role}}</span>
            <input type="hidden" name="csrf" value="{{csrf}}">
            <button type="submit">Sign out</button>
          </form>
          {{/user}}
        </header>
        <main id="main">
        {{{body}}}
        </main>
        </body>
        </html>
        """

    static let login = """
        <section class="card narrow">
          <h1>Sign in</h1>
          <p>Sign in with an API key. An administrator makes one with <code>imagehub keys create --role admin</code>.</p>
          {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
          <form method="post" action="/login">
            <label for="key">API key</label>
            <input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
            <button type="submit">Sign in</button>
          </form>
        </section>
        """

    static let overview = """
        <h1>Overview</h1>
        <div id="figures" data-refresh="10">
        <section class="figures" aria-label="Images by status">
          <div class="figure"><span class="n">{{total}}</span><span>images</span></div>
          {{#statuses}}<div class="figure status-{{status}}"><span class="n">{{count}}</span><span>{{status}}</span></div>{{/statuses}}
          <div class="figure"><span class="n">{{backlog}}</span><span>waiting for processing</span></div>
          <div class="figure"><span class="n">{{labels}}</span><span>labels</span></div>
        </section>
        <section class="card">
          <h2>Per minute <span class="muted">(UTC, the last ten minutes and this one)</span></h2>
          <table class="activity">
            <thead><tr><th scope="col">minute</th><th scope="col" class="num">uploads</th><th scope="col"></th>
            <th scope="col" class="num">verdicts</th><th scope="col"></th></tr></thead>
            <tbody>{{#minutes}}<tr><td>{{minute}}</td>
            <td class="num">{{uploads}}</td><td><meter min="0" max="{{max}}" value="{{uploads}}" aria-label="uploads at {{minute}}"></meter></td>
            <td class="num">{{decided}}</td><td><meter min="0" max="{{max}}" value="{{decided}}" aria-label="verdicts at {{minute}}"></meter></td></tr>{{/minutes}}</tbody>
          </table>
        </section>
        <section class="card">
          <h2>Rejections and quarantines by reason</h2>
          {{#hasReasons}}
          <table>
            <thead><tr><th scope="col">reason code</th><th scope="col" class="num">images</th></tr></thead>
            <tbody>{{#reasons}}<tr><td><code>{{code}}</code></td><td class="num">{{count}}</td></tr>{{/reasons}}</tbody>
          </table>
          {{/hasReasons}}
          {{^hasReasons}}<p>No image has been rejected or quarantined.</p>{{/hasReasons}}
        </section>
        </div>
        """

    static let labels = """
        <h1>Labels</h1>
        <form class="search" method="get" action="/labels" role="search">
          <label for="q">Find a label</label>
          <input id="q" name="q" type="search" value="{{query}}">
          <button type="submit">Search</button>
        </form>
        {{#admin}}<form class="search" method="post" action="/labels">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <div><label for="new-name">New label</label><input id="new-name" name="name" type="search" required maxlength="200"></div>
          <div><label for="new-parent">under <span class="muted">(optional)</span></label><input id="new-parent" name="parent" type="search" maxlength="200"></div>
          <button type="submit">Create</button>
        </form>
        <form class="search" method="post" action="/labels/import" enctype="multipart/form-data">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <div><label for="import-classes">Open Images class descriptions <span class="muted">(CSV: MID, name)</span></label>
          <input id="import-classes" name="classes" type="file" accept=".csv,text/csv" required></div>
          <div><label for="import-hierarchy">hierarchy <span class="muted">(JSON, optional)</span></label>
          <input id="import-hierarchy" name="hierarchy" type="file" accept=".json,application/json"></div>
          <button type="submit">Import</button>
        </form>{{/admin}}
        {{#empty}}<p>No label matches.</p>{{/empty}}
        {{^empty}}
        <table class="labels">
          <thead><tr><th scope="col">label</th><th scope="col" class="num">accepted</th><th scope="col" class="num">quarantined</th>
          <th scope="col" class="num">rejected</th><th scope="col" class="num">pending</th></tr></thead>
          <tbody>
          {{#rows}}<tr><td class="indent-{{indent}}"><a href="{{href}}">{{displayName}}</a> <span class="muted">{{name}}</span></td>
          <td class="num">{{accepted}}</td><td class="num">{{quarantined}}</td><td class="num">{{rejected}}</td><td class="num">{{pending}}</td></tr>{{/rows}}
          </tbody>
        </table>
        {{/empty}}
        """

    static let imported = """
        <h1>Labels imported</h1>
        <p>{{classes}} classes read: {{created}} labels made, {{linked}} placed under their parents.</p>
        <p><a href="/labels">Back to the labels</a></p>
        """

    static let label = """
        <h1>{{displayName}} <span class="muted">{{name}}</span></h1>
        <nav class="filters" aria-label="Status">
          {{#filters}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{name}}</a>{{/filters}}
        </nav>
        <form method="get" action="{{action}}" class="filters">
          <input type="hidden" name="status" value="{{status}}">
          <label for="reason">Reason</label>
          <select id="reason" name="reason"><option value="">any</option>{{#reasonOptions}}<option value="{{code}}"{{#selected}} selected{{/selected}}>{{code}}</option>{{/reasonOptions}}</select>
          <button type="submit">Filter</button>
        </form>
        {{#clustered}}<section class="card clusters"><h2>Clusters <span class="muted">of {{images}} accepted images, {{at}}</span></h2>
        <ul class="clusters">{{#clusters}}<li><span>cluster {{number}} · {{size}} images</span>
          {{#representatives}}<a href="/images/{{id}}"><img src="/v1/images/{{id}}/thumbnail" alt="{{alt}}" loading="lazy" width="96" height="96"></a>{{/representatives}}</li>{{/clusters}}</ul>
        {{#hasOutliers}}<h3>Outliers</h3><ul class="clusters"><li>{{#outliers}}<a href="/images/{{id}}" title="distance {{distance}}"><img src="/v1/images/{{id}}/thumbnail" alt="{{alt}}, distance {{distance}}" loading="lazy" width="96" height="96"></a>{{/outliers}}</li></ul>{{/hasOutliers}}
        </section>{{/clustered}}
        {{#hasQuality}}<details class="card"><summary>Quality thresholds for this label</summary>
        <table><thead><tr><th scope="col">threshold</th><th scope="col" class="num">in force</th><th scope="col" class="num">global</th>
        <th scope="col">source</th><th scope="col">why</th></tr></thead>
        <tbody>{{#quality}}<tr><td>{{what}}</td><td class="num">{{value}}</td><td class="num">{{global}}</td><td>{{source}}</td><td>{{why}}</td></tr>{{/quality}}</tbody></table>
        </details>{{/hasQuality}}
        {{#empty}}<p>No {{status}} images{{#reason}} with reason {{reason}}{{/reason}}.</p>{{/empty}}
        <ul class="grid">
          {{#tiles}}<li class="tile status-{{status}}">
            <a href="/images/{{id}}">{{#thumbnail}}<img src="{{thumbnail}}" alt="{{alt}}" loading="lazy" width="256" height="256">{{/thumbnail}}
            {{^thumbnail}}<div class="placeholder" role="img" aria-label="{{alt}}">{{status}}</div>{{/thumbnail}}</a>
            <span class="caption">{{status}}{{#reasons}} · {{reasons}}{{/reasons}}</span>
          </li>{{/tiles}}
        </ul>
        {{#next}}<p><a class="next" href="{{next}}" data-infinite>More images</a></p>{{/next}}
        """

    static let review = """
        <h1>Review <span class="muted">{{count}} quarantined, the longest waiting first</span></h1>
        <p class="muted">Keys: <kbd>j</kbd>/<kbd>k</kbd> move, <kbd>a</kbd> accept, <kbd>r</kbd> reject, <kbd>l</kbd> relabel
        (as the label named beside it), <kbd>x</kbd> select.</p>
        {{#empty}}<p>Nothing waits for review.</p>{{/empty}}
        {{^empty}}<form id="bulk" method="post" action="/review" class="bulk">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <span>Selected images:</span>
          <button type="submit" name="decision" value="accept">Accept selected</button>
          <button type="submit" name="decision" value="reject" class="reject">Reject selected</button>
        </form>{{/empty}}
        <datalist id="label-names">{{#labelNames}}<option value="{{.}}">{{/labelNames}}</datalist>
        <ol class="queue">
          {{#items}}<li class="review" tabindex="0" data-review>
            <div class="pictures">
              <figure>{{#thumbnail}}<img src="{{thumbnail}}" alt="{{alt}}" width="256" height="256">{{/thumbnail}}
              <figcaption>uploaded as <strong>{{label}}</strong> · <a href="/images/{{id}}">details</a></figcaption></figure>
              {{#original}}<figure><img src="{{thumbnail}}" alt="{{alt}}" width="256" height="256"><figcaption>the original</figcaption></figure>{{/original}}
              {{#suggested}}<figure class="examples">{{#examples}}<img src="{{thumbnail}}" alt="{{alt}}" width="120" height="120">{{/examples}}
              <figcaption>looks like <a href="{{href}}">{{name}}</a></figcaption></figure>{{/suggested}}
            </div>
            <p class="reasons"><code>{{reasons}}</code></p>
            <p><input type="checkbox" id="select-{{id}}" name="id" value="{{id}}" form="bulk" data-select>
            <label for="select-{{id}}">select</label></p>
            <form method="post" action="/review/{{id}}" class="decide">
              <input type="hidden" name="csrf" value="{{csrf}}">
              <button type="submit" name="decision" value="accept" data-key="a">Accept</button>
              <button type="submit" name="decision" value="reject" data-key="r" class="reject">Reject</button>
              <label for="relabel-{{id}}">as</label>
              <input id="relabel-{{id}}" name="label" type="text" list="label-names" value="{{relabelTo}}" required maxlength="200">
              <button type="submit" name="decision" value="relabel" data-key="l">Relabel</button>
            </form>
          </li>{{/items}}
        </ol>
        """

    static let image = """
        <h1>Image <span class="muted">{{id}}</span></h1>
        <p>{{#labelHref}}<a href="{{labelHref}}">{{label}}</a>{{/labelHref}}{{^labelHref}}{{label}}{{/labelHref}} · {{status}}</p>
        <div class="pictures">
          <figure>{{#canonical}}<img class="canonical" src="{{canonical}}" alt="{{alt}}">{{/canonical}}
          {{^canonical}}<div class="placeholder" role="img" aria-label="{{alt}}">no rendition ({{status}})</div>{{/canonical}}
          <figcaption>this image</figcaption></figure>
          {{#original}}<figure><a href="{{href}}"><img class="canonical" src="{{src}}" alt="the original it duplicates"></a>
          <figcaption>the original it duplicates</figcaption></figure>{{/original}}
        </div>
        <section class="card">
          <h2>What the hub knows</h2>
          <table class="facts"><tbody>{{#facts}}<tr><th scope="row">{{name}}</th><td>{{value}}</td></tr>{{/facts}}</tbody></table>
        </section>
        {{#hasSimilar}}<section class="card"><h2>Similar accepted images</h2>
        <ul class="grid">{{#similar}}<li class="tile"><a href="{{href}}"><img src="{{src}}" alt="{{alt}}" loading="lazy" width="256" height="256"></a>
        <span class="caption">similarity {{similarity}}</span></li>{{/similar}}</ul></section>{{/hasSimilar}}
        """

    static let upload = """
        <h1>Upload</h1>
        <form id="upload" class="card" data-upload data-csrf="{{csrf}}">
          <label for="label">Label</label>
          <select id="label" name="label" required>{{#labels}}<option value="{{name}}">{{displayName}}</option>{{/labels}}</select>
          <label for="device">Device <span class="muted">(optional)</span></label>
          <input id="device" name="device" type="text" maxlength="200">
          <label for="files">Photos</label>
          <div class="drop" data-drop>Drop photos here, or <input id="files" name="files" type="file" accept="image/*" multiple></div>
          <button type="submit">Upload</button>
          <noscript><p class="error">Uploading from this page needs JavaScript; the API takes uploads without it.</p></noscript>
        </form>
        <table class="uploads" aria-live="polite">
          <thead><tr><th scope="col">file</th><th scope="col">sent</th><th scope="col">verdict</th></tr></thead>
          <tbody></tbody>
        </table>
        """

    static let batches = """
        <h1>Batches</h1>
        {{#map}}<section class="card"><h2>Where photos were taken <span class="muted">{{count}} places, {{bounds}}</span></h2>
        <svg class="places" viewBox="0 0 640 360" width="640" height="360" role="img" aria-label="{{count}} places where photos were taken, by status">
          <rect x="0" y="0" width="640" height="360" class="sea"/>
          {{#points}}<circle cx="{{x}}" cy="{{y}}" r="4" class="dot-{{status}}"><title>{{title}}</title></circle>{{/points}}
        </svg>
        <p class="muted"><span class="key dot-accepted">●</span> accepted <span class="key dot-quarantined">●</span> quarantined
        <span class="key dot-rejected">●</span> rejected <span class="key dot-pending">●</span> pending</p></section>{{/map}}
        <section class="card"><h2>By device</h2>
        {{#noDevices}}<p>No images yet.</p>{{/noDevices}}
        {{^noDevices}}<table><thead><tr><th scope="col">device</th><th scope="col" class="num">images</th><th scope="col" class="num">accepted</th>
        <th scope="col" class="num">quarantined</th><th scope="col" class="num">rejected</th><th scope="col" class="num">acceptance</th><th scope="col" class="num">mean sharpness</th></tr></thead>
        <tbody>{{#devices}}<tr><td>{{device}}</td><td class="num">{{submitted}}</td><td class="num">{{accepted}}</td><td class="num">{{quarantined}}</td>
        <td class="num">{{rejected}}</td><td class="num">{{acceptance}}</td><td class="num">{{sharpness}}</td></tr>{{/devices}}</tbody></table>{{/noDevices}}
        </section>
        <section class="card"><h2>Latest batches</h2>
        {{#noBatches}}<p>No batches yet (phones open one with <code>POST /v1/batches</code>).</p>{{/noBatches}}
        {{^noBatches}}<table><thead><tr><th scope="col">batch</th><th scope="col">device</th><th scope="col" class="num">images</th><th scope="col" class="num">accepted</th>
        <th scope="col" class="num">quarantined</th><th scope="col" class="num">rejected</th><th scope="col" class="num">pending</th><th scope="col" class="num">acceptance</th><th scope="col">opened</th></tr></thead>
        <tbody>{{#batches}}<tr><td><code>{{id}}</code></td><td>{{device}}</td><td class="num">{{submitted}}</td><td class="num">{{accepted}}</td>
        <td class="num">{{quarantined}}</td><td class="num">{{rejected}}</td><td class="num">{{pending}}</td><td class="num">{{acceptance}}</td><td>{{created}}</td></tr>{{/batches}}</tbody></table>{{/noBatches}}
        </section>
        """

    static let training = """
        <h1>Training</h1>
        {{#disabled}}<p class="error">This hub runs without embeddings, so it cannot train (embedding.enabled = false).</p>{{/disabled}}
        <form method="post" action="/training" class="card">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <fieldset><legend>Labels to tell apart (two or more; each needs {{minimum}} accepted images)</legend>
          {{#labels}}<label class="check"><input type="checkbox" name="label" value="{{name}}"> {{displayName}}
            <span class="muted">{{accepted}} accepted{{#short}} · {{short}}{{/short}}</span></label>{{/labels}}
          </fieldset>
          <label class="check"><input type="checkbox" name="fine_tune"> Fine-tune the backbone's last block
            <span class="muted">slower: reads every image again; for labels that look alike</span></label>
          <button type="submit">Train</button>
        </form>
        """

    static let trainingJob = """
        <h1>Training <span class="muted">{{id}}</span></h1>
        <div id="job"{{#live}} data-refresh="2"{{/live}}>
        <p>State: <strong class="state">{{state}}</strong>{{#live}} · epoch {{epoch}}{{/live}}</p>
        {{#error}}<p class="error">{{error}}</p>{{/error}}
        {{#model}}
        <section class="card">
          <h2>Model {{id}}</h2>
          <p>Validation accuracy <strong class="accuracy">{{accuracy}}</strong> · macro F1 {{macroF1}} · trained on {{images}} images in {{seconds}} s ·
          <a class="onnx" href="{{onnx}}" download>Download the ONNX model</a></p>
          {{#fineTuning}}<p class="fine-tuning">Fine-tuned the backbone's last block: a linear head alone scored {{linear}} on the same split;
          {{#kept}}no epoch beat it, so the backbone stays as it was.{{/kept}}{{^kept}}epoch {{best}} of {{epochs}} kept.{{/kept}}</p>{{/fineTuning}}
          <table><thead><tr><th scope="col">label</th><th scope="col" class="num">precision</th><th scope="col" class="num">recall</th><th scope="col" class="num">validation images</th></tr></thead>
          <tbody>{{#classes}}<tr><td>{{label}}</td><td class="num">{{precision}}</td><td class="num">{{recall}}</td><td class="num">{{support}}</td></tr>{{/classes}}</tbody></table>
          <img class="report" src="{{svg}}" alt="learning curves and confusion matrix of model {{id}}">
        </section>
        {{/model}}
        {{#hasErrors}}<section class="card"><h2>Likely label errors</h2>
        <ul class="grid">{{#errors}}<li class="tile"><a href="{{href}}"><img src="{{src}}" alt="{{alt}}" loading="lazy" width="256" height="256"></a>
        <span class="caption">given {{given}} · looks like {{suggested}}</span>
        {{#canRelabel}}<form method="post" action="/review/{{id}}"><input type="hidden" name="csrf" value="{{csrf}}">
        <input type="hidden" name="label" value="{{suggested}}"><input type="hidden" name="next" value="{{back}}">
        <button type="submit" name="decision" value="relabel">Relabel as {{suggested}}</button></form>{{/canRelabel}}</li>{{/errors}}</ul></section>{{/hasErrors}}
        </div>
        """

    static let models = """
        <h1>Models</h1>
        {{#empty}}<p>No model yet. Train one from the Training page.</p>{{/empty}}
        {{^empty}}
        <table><thead><tr><th scope="col">model</th><th scope="col">labels</th><th scope="col" class="num">accuracy</th>
        <th scope="col">backbone</th><th scope="col">made</th><th scope="col">download</th></tr></thead>
        <tbody>{{#models}}<tr><td><a href="{{job}}">{{id}}</a></td><td>{{labels}}</td><td class="num">{{accuracy}}</td>
        <td><code>{{backbone}}</code></td><td>{{created}}</td><td><a href="{{onnx}}" download>ONNX</a></td></tr>{{/models}}</tbody></table>
        {{/empty}}
        <section class="card"><h2>Watch-list</h2>
        {{#noWatches}}<p>No label is watched. A training request for a label that is still short puts it here.</p>{{/noWatches}}
        {{^noWatches}}<table class="watches"><thead><tr><th scope="col">label</th><th scope="col" class="num">wanted accepted images</th>
        <th scope="col">webhook</th><th scope="col">fired</th><th scope="col">watched since</th></tr></thead>
        <tbody>{{#watches}}<tr><td>{{label}}</td><td class="num">{{threshold}}</td><td>{{#webhook}}<code>{{webhook}}</code>{{/webhook}}{{^webhook}}–{{/webhook}}</td>
        <td>{{fired}}</td><td>{{since}}</td></tr>{{/watches}}</tbody></table>{{/noWatches}}
        </section>
        """

    static let quests = """
        <h1>Quests</h1>
        <p>What to photograph next, most needed first: classes the newest model finds too rarely or confuses,
        kinds of photo a label has few of, labels close to a watch-list threshold. Phones read the same list at
        <code>GET /v1/quests</code>.</p>
        {{#none}}<p>No quest is open. Train a model, and the classes it is weak at will appear here.</p>{{/none}}
        {{^none}}<table class="quests"><thead><tr><th scope="col">label</th><th scope="col">what to photograph</th>
        <th scope="col" class="num">wanted</th><th scope="col">reason</th><th scope="col">examples</th></tr></thead>
        <tbody>{{#quests}}<tr><td><a href="{{labelHref}}">{{label}}</a></td><td>{{message}}</td><td class="num">{{want}}</td>
        <td><code>{{reason}}</code></td><td>{{#examples}}<a href="/images/{{id}}"><img src="/v1/images/{{id}}/thumbnail" alt="example of {{label}}" loading="lazy" width="64" height="64"></a>{{/examples}}</td></tr>{{/quests}}</tbody></table>{{/none}}
        """

    static let error = """
        <section class="card narrow">
          <h1>{{title}}</h1>
          <p>{{message}}</p>
          <p><a href="/">Back to the overview</a></p>
        </section>
        """

    static let css = """
        :root { --fg: #1d2430; --muted: #5b6576; --bg: #f5f6f8; --card: #fff; --accent: #1f5fbf; --line: #dde1e7;
                --ok: #1f7a3d; --warn: #a15c00; --bad: #b3261e; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
        a { color: var(--accent); }
        a:focus-visible, button:focus-visible, input:focus-visible { outline: 3px solid #8ab4f8; outline-offset: 2px; }
        .bar { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.2rem; background: #14213d; color: #fff; }
        .bar a { color: #fff; text-decoration: none; }
        .brand { font-weight: 700; }
        .bar nav { display: flex; gap: 1rem; flex: 1; }
        .bar nav a[aria-current] { border-bottom: 2px solid #fff; }
        .signout { display: flex; gap: .6rem; align-items: center; }
        .who { color: #cfd6e4; }
        main { max-width: 1200px; margin: 0 auto; padding: 1.2rem; }
        .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.2rem; margin: 1rem 0; }
        .narrow { max-width: 28rem; margin: 3rem auto; }
        label { display: block; font-weight: 600; margin: .6rem 0 .2rem; }
        input[type=password], input[type=search] { width: 100%; padding: .45rem .6rem; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
        button { margin-top: .6rem; padding: .4rem .9rem; border: 0; border-radius: 6px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
        .bar button { margin: 0; background: #2d3f66; }
        .error { color: var(--bad); }
        .muted { color: var(--muted); font-size: .9em; }
        .figures { display: flex; flex-wrap: wrap; gap: .8rem; }
        .figure { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .7rem 1rem; min-width: 8rem; }
        .figure .n { display: block; font-size: 1.6rem; font-weight: 700; }
        .status-accepted .n { color: var(--ok); } .status-quarantined .n { color: var(--warn); } .status-rejected .n { color: var(--bad); }
        table { border-collapse: collapse; width: 100%; background: var(--card); }
        th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); }
        .num { text-align: right; font-variant-numeric: tabular-nums; }
        .indent-1 { padding-left: 1.6rem; } .indent-2 { padding-left: 2.8rem; } .indent-3 { padding-left: 4rem; } .indent-4 { padding-left: 5.2rem; }
        .search { display: flex; gap: .6rem; align-items: end; max-width: 32rem; margin-bottom: 1rem; }
        .search label { margin: 0; } .search button { margin: 0; }
        .filters { display: flex; gap: 1rem; margin: .5rem 0 1rem; }
        .filters a[aria-current] { font-weight: 700; text-decoration: none; color: var(--fg); }
        .grid { list-style: none; padding: 0; display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: .7rem; }
        .tile { background: var(--card); border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
        .tile img, .placeholder { display: block; width: 100%; height: 160px; object-fit: cover; background: #e8ebf0; }
        .placeholder { display: flex; align-items: center; justify-content: center; color: var(--muted); }
        .caption { display: block; padding: .3rem .5rem; font-size: .85em; color: var(--muted); }
        .queue { list-style: none; padding: 0; }
        .review { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .8rem; margin: .8rem 0; }
        .review:focus { outline: 3px solid #8ab4f8; }
        .pictures { display: flex; flex-wrap: wrap; gap: 1rem; }
        .pictures figure { margin: 0; }
        .pictures img { display: block; max-width: 256px; height: auto; background: #e8ebf0; }
        .examples img { display: inline-block; width: 120px; height: 120px; object-fit: cover; margin-right: .3rem; }
        ul.clusters { list-style: none; padding: 0; }
        ul.clusters li { display: flex; gap: .4rem; align-items: center; flex-wrap: wrap; margin: .4rem 0; }
        ul.clusters li span { min-width: 11rem; }
        .decide, .bulk { display: flex; gap: .6rem; align-items: center; flex-wrap: wrap; }
        .decide .reject, .bulk .reject { background: var(--bad); }
        .canonical { max-width: min(100%, 560px); height: auto; }
        .facts th { width: 10rem; color: var(--muted); font-weight: 600; }
        .drop { border: 2px dashed var(--line); border-radius: 8px; padding: 1.2rem; text-align: center; color: var(--muted); }
        .drop.over { border-color: var(--accent); background: #eef3fb; }
        .uploads progress { width: 10rem; }
        fieldset { border: 0; padding: 0; margin: 0; } legend { font-weight: 600; margin-bottom: .4rem; }
        label.check { font-weight: 400; margin: .2rem 0; }
        .report { display: block; max-width: 100%; height: auto; margin-top: 1rem; }
        .places { max-width: 100%; height: auto; } .places .sea { fill: #eef2f7; }
        .dot-accepted { fill: var(--ok); color: var(--ok); } .dot-quarantined { fill: var(--warn); color: var(--warn); }
        .dot-rejected { fill: var(--bad); color: var(--bad); } .dot-pending { fill: var(--muted); color: var(--muted); }
        kbd { border: 1px solid var(--line); border-radius: 3px; padding: 0 .3rem; background: #fff; }
        """

    /// Pages marked `data-refresh="N"` reload their content every N seconds; a "More images" link marked
    /// `data-infinite` loads the next page when it scrolls into view. Without script both still work as links.
    static let script = """
        "use strict";
        document.addEventListener("DOMContentLoaded", () => {
          // A region stops refreshing once the fresh page no longer marks it (a finished training job).
          for (const region of document.querySelectorAll("[data-refresh]")) {
            const seconds = Math.max(2, Number(region.dataset.refresh) || 10);
            const timer = setInterval(async () => {
              if (document.hidden) return;
              const answer = await fetch(location.href, { credentials: "same-origin" });
              if (!answer.ok) return;
              const page = new DOMParser().parseFromString(await answer.text(), "text/html");
              const fresh = page.getElementById(region.id);
              if (!fresh) return;
              region.replaceChildren(...fresh.childNodes);
              if (!fresh.hasAttribute("data-refresh")) clearInterval(timer);
            }, seconds * 1000);
          }
          const more = () => {
            const link = document.querySelector("a[data-infinite]");
            if (!link || !("IntersectionObserver" in window)) return;
            const watcher = new IntersectionObserver(async (entries) => {
              if (!entries.some((e) => e.isIntersecting)) return;
              watcher.disconnect();
              const answer = await fetch(link.href, { credentials: "same-origin" });
              if (!answer.ok) return;
              const page = new DOMParser().parseFromString(await answer.text(), "text/html");
              const grid = document.querySelector(".grid");
              for (const tile of page.querySelectorAll(".grid > li")) grid.append(tile);
              const next = page.querySelector("a[data-infinite]");
              if (next) { link.href = next.href; more(); } else { link.parentElement.remove(); }
            });
            watcher.observe(link);
          };
          more();
          // Upload: every file is its own POST /v1/images with a progress bar, then its verdict as it arrives.
          const uploadForm = document.querySelector("[data-upload]");
          if (uploadForm) {
            const rows = document.querySelector(".uploads tbody");
            const input = uploadForm.querySelector("input[type=file]");
            const waiting = new Map();
            const send = (file) => {
              const row = rows.insertRow();
              row.insertCell().textContent = file.name;
              const bar = document.createElement("progress");
              bar.max = 1; bar.value = 0;
              row.insertCell().append(bar);
              const verdict = row.insertCell();
              verdict.textContent = "sending";
              const body = new FormData();
              body.append("label", uploadForm.elements.label.value);
              if (uploadForm.elements.device.value) body.append("device", uploadForm.elements.device.value);
              body.append("file", file, file.name);
              const request = new XMLHttpRequest();
              request.open("POST", "/v1/images");
              request.setRequestHeader("X-CSRF-Token", uploadForm.dataset.csrf);
              request.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
              request.onload = () => {
                let answer = {};
                try { answer = JSON.parse(request.responseText); } catch (e) {}
                bar.value = 1;
                if (request.status === 202 || request.status === 200) {
                  verdict.textContent = answer.status || "pending";
                  if (answer.status === "pending") waiting.set(answer.id, verdict);
                  verdict.dataset.id = answer.id;
                } else {
                  verdict.textContent = "refused: " + ((answer.error && answer.error.code) || request.status);
                }
              };
              request.onerror = () => { verdict.textContent = "not sent (network)"; };
              request.send(body);
            };
            const sendAll = (files) => { for (const file of files) send(file); };
            uploadForm.addEventListener("submit", (e) => { e.preventDefault(); sendAll(input.files); input.value = ""; });
            const drop = uploadForm.querySelector("[data-drop]");
            drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
            drop.addEventListener("dragleave", () => drop.classList.remove("over"));
            drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); sendAll(e.dataTransfer.files); });
            setInterval(async () => {
              if (!waiting.size) return;
              const ids = [...waiting.keys()].slice(0, 200);
              const answer = await fetch("/v1/images?ids=" + ids.join(","), { credentials: "same-origin" });
              if (!answer.ok) return;
              for (const image of (await answer.json()).images) {
                if (image.status === "pending") continue;
                const cell = waiting.get(image.id);
                waiting.delete(image.id);
                if (!cell) continue;
                cell.textContent = image.status + (image.reasons.length ? " · " + image.reasons.join(", ") : "");
                const link = document.createElement("a");
                link.href = "/images/" + image.id;
                link.textContent = " details";
                cell.append(link);
              }
            }, 1000);
          }
          // Review: j/k move between quarantined images; a/r/l accept, reject or relabel the one in focus; x selects it.
          const items = [...document.querySelectorAll("[data-review]")];
          if (items.length) {
            items[0].focus();
            document.addEventListener("keydown", (event) => {
              if (event.ctrlKey || event.metaKey || event.altKey || event.target.matches("input, textarea, select")) return;
              const current = items.indexOf(document.activeElement.closest("[data-review]"));
              const at = current < 0 ? 0 : current;
              if (event.key === "j" || event.key === "k") {
                const next = Math.min(items.length - 1, Math.max(0, at + (event.key === "j" ? 1 : -1)));
                items[next].focus();
                items[next].scrollIntoView({ block: "nearest" });
                event.preventDefault();
              } else if (event.key === "a" || event.key === "r" || event.key === "l") {
                const button = items[at].querySelector(`button[data-key="${event.key}"]`);
                if (button) { button.click(); event.preventDefault(); }
              } else if (event.key === "x") {
                const box = items[at].querySelector("[data-select]");
                if (box) { box.checked = !box.checked; event.preventDefault(); }
              }
            });
          }
        });
        """
}
