// Wuyou console, union staff's part: the overview they open on (each
// programme's budget, packs issued and minutes used; the month's covered and
// overage minutes by day as a chart; the companies with most overage),
// pickers that find companies and programmes by name wherever an id is
// asked (a monthly programme's company too), the companies list with "new company", and operations: void a
// grant (of a seafarer found by company and name or MSISDN, or by id),
// close a period, reconcile a month with the carrier's settlement.
// console.js calls W.unionConsole.enter/reset/redraw and lends its helpers
// as W.console; nothing here runs for a company token.
W.unionConsole = (function () {
  'use strict';
  var t = W.t, $ = W.$, h = W.h;
  var enc = encodeURIComponent;
  var SVG = 'http://www.w3.org/2000/svg';
  var wired = false;
  var finding = 0; // counts searches of a crew: only the last one typed is shown
  var FOUND_SHOWN = 12;
  var state = { overview: null, programmes: null, companies: { items: [], cursor: '', q: '' }, grants: null, chosen: null, reconciliation: null, closed: null };

  W.addStrings({
    en: {
      'tab.overview': 'Overview', 'tab.companies': 'Companies', 'tab.ops': 'Operations',
      'ov.title': 'Overview', 'ov.month': 'Month', 'ov.programmes': 'Programmes', 'ov.noProgrammes': 'No programmes yet.',
      'ov.budget': 'Budget (packs)', 'ov.issued': 'Packs issued', 'ov.used': 'Minutes used', 'ov.granted': 'Minutes granted',
      'ov.byDay': 'Covered and overage minutes by day', 'ov.covered': 'Covered minutes', 'ov.overage': 'Overage minutes',
      'ov.calls': 'Calls', 'ov.adjustments': 'Plus {0} calls of earlier closed months counted in this one.',
      'ov.dayTitle': '{0}: {1} covered, {2} overage minutes', 'ov.chartLabel': '{0}: {1} covered and {2} overage minutes in all',
      'ov.top': 'Companies with most overage', 'ov.noOverage': 'No overage this month.', 'ov.amount': 'Overage billed',
      'ov.status.open': 'Open', 'ov.status.closed': 'Closed', 'ov.issuedMonth': '{0} in {1}, {2} in all',
      'pick.placeholder': 'Type a name, or paste an ID', 'pick.none': 'No match.',
      'co.new': 'New company', 'co.name': 'Name', 'co.reg': 'Registration no.', 'co.create': 'Create company',
      'co.list': 'Companies', 'co.search': 'Search by name', 'co.empty': 'No companies match.', 'co.created': 'Created company {0} ({1}).',
      'co.id': 'ID', 'co.since': 'Since',
      'ops.void': 'Void a grant', 'ops.seafarer': 'Seafarer ID', 'ops.showGrants': 'Show grants', 'ops.noGrants': 'This seafarer holds no grants.',
      'ops.company': 'Company', 'ops.find': 'Name or MSISDN', 'ops.needCompany': 'Pick the company first.',
      'ops.more': 'And more: type more of the name or number.', 'ops.grantsOf': 'Grants of {0} ({1})',
      'ops.grant': 'Grant', 'ops.left': 'Minutes left', 'ops.expires': 'Expires', 'ops.voidOne': 'Void', 'ops.confirmVoid': 'Confirm void',
      'ops.voided': 'Voided grant {0}: {1} minutes were left.',
      'ops.close': 'Close a period', 'ops.closeHelp': 'A month can be closed once it has ended; its statements then never change, and later calls of it are counted in the next open month.',
      'ops.closeOne': 'Close period', 'ops.confirmClose': 'Confirm: close {0}', 'ops.closedState': 'Period {0} is {1}.', 'ops.closedCount': '{0} seafarers have figures in it.',
      'ops.reconcile': 'Reconcile with the carrier', 'ops.reconcileHelp': "The carrier's settlement as CSV with the header msisdn,calls,billable_seconds,covered_seconds.",
      'ops.file': 'Settlement file', 'ops.run': 'Reconcile', 'ops.matched': 'Matched', 'ops.differences': 'Differences',
      'ops.missingWuyou': 'Missing in Wuyou', 'ops.missingCarrier': "Missing in the carrier's file", 'ops.invalid': 'Invalid rows',
      'ops.field': 'Figure', 'ops.wuyou': 'Wuyou', 'ops.carrier': 'Carrier', 'ops.allMatch': 'Every MSISDN matches.'
    },
    'zh-CN': {
      'tab.overview': '概览', 'tab.companies': '公司', 'tab.ops': '操作',
      'ov.title': '概览', 'ov.month': '月份', 'ov.programmes': '福利计划', 'ov.noProgrammes': '还没有福利计划。',
      'ov.budget': '预算（套餐）', 'ov.issued': '已发放套餐', 'ov.used': '已使用分钟', 'ov.granted': '已发放分钟',
      'ov.byDay': '每日套餐覆盖与超出分钟', 'ov.covered': '套餐覆盖分钟', 'ov.overage': '超出分钟',
      'ov.calls': '通话次数', 'ov.adjustments': '另有 {0} 次以前已结账月份的通话计入本月。',
      'ov.dayTitle': '{0}：覆盖 {1} 分钟，超出 {2} 分钟', 'ov.chartLabel': '{0}：共覆盖 {1} 分钟，超出 {2} 分钟',
      'ov.top': '超出最多的公司', 'ov.noOverage': '本月没有超出。', 'ov.amount': '超出费用',
      'ov.status.open': '未结账', 'ov.status.closed': '已结账', 'ov.issuedMonth': '{1} 发放 {0}，累计 {2}',
      'pick.placeholder': '输入名称，或粘贴 ID', 'pick.none': '没有匹配项。',
      'co.new': '新建公司', 'co.name': '名称', 'co.reg': '注册号', 'co.create': '创建公司',
      'co.list': '公司', 'co.search': '按名称搜索', 'co.empty': '没有符合条件的公司。', 'co.created': '已创建公司 {0}（{1}）。',
      'co.id': 'ID', 'co.since': '创建于',
      'ops.void': '作废套餐', 'ops.seafarer': '船员 ID', 'ops.showGrants': '查看套餐', 'ops.noGrants': '该船员没有套餐。',
      'ops.company': '公司', 'ops.find': '姓名或手机号', 'ops.needCompany': '请先选择公司。',
      'ops.more': '还有更多：请输入更多姓名或号码。', 'ops.grantsOf': '{0}（{1}）的套餐',
      'ops.grant': '套餐', 'ops.left': '剩余分钟', 'ops.expires': '到期', 'ops.voidOne': '作废', 'ops.confirmVoid': '确认作废',
      'ops.voided': '已作废套餐 {0}：剩余 {1} 分钟已清零。',
      'ops.close': '结账', 'ops.closeHelp': '月份结束后才能结账；结账后对账单不再变化，该月之后到达的通话计入下一个未结账月份。',
      'ops.closeOne': '结账', 'ops.confirmClose': '确认结账 {0}', 'ops.closedState': '账期 {0}：{1}。', 'ops.closedCount': '{0} 位船员在该账期有数据。',
      'ops.reconcile': '与运营商对账', 'ops.reconcileHelp': '运营商的结算 CSV，表头为 msisdn,calls,billable_seconds,covered_seconds。',
      'ops.file': '结算文件', 'ops.run': '对账', 'ops.matched': '一致', 'ops.differences': '差异',
      'ops.missingWuyou': '无忧缺少', 'ops.missingCarrier': '运营商文件缺少', 'ops.invalid': '无效行',
      'ops.field': '项目', 'ops.wuyou': '无忧', 'ops.carrier': '运营商', 'ops.allMatch': '所有号码一致。'
    }
  });

  function C() { return W.console; } // say, fail, busy, stat, fill, select
  function month(d) { return d.toISOString().slice(0, 7); }

  // ---- entering and leaving ----

  function enter(me) {
    if (!me || me.role !== 'union') return;
    if (!wired) { wire(); wired = true; }
    loadOverview();
    loadCompanies(false);
  }

  function reset() {
    state = { overview: null, programmes: null, companies: { items: [], cursor: '', q: '' }, grants: null, chosen: null, reconciliation: null, closed: null };
    ['ov-programmes', 'ov-chart', 'ov-top', 'ov-stats', 'co-rows', 'ops-grants', 'ops-close-result', 'ops-reconcile-result'].forEach(function (id) { W.clear($(id)); });
    ['co-name', 'co-reg', 'co-q', 'ops-seafarer', 'ops-file'].forEach(function (id) { $(id).value = ''; });
    if (wired) ['ops-company', 'ops-find'].forEach(function (id) { $(id).value = ''; }); // made by wire()
    finding++;
    var picks = document.querySelectorAll('.picks, .picked');
    for (var i = 0; i < picks.length; i++) W.clear(picks[i]);
  }

  function redraw() {
    renderOverview();
    renderCompanies();
    renderGrants();
    if (wired && $('ops-found').firstChild) findSeafarers(); // the choices on show, in the new language
    renderClosed();
    renderReconciliation();
    var inputs = document.querySelectorAll('input[data-pick]');
    for (var i = 0; i < inputs.length; i++) inputs[i].placeholder = t('pick.placeholder');
  }

  // ---- overview ----

  async function allProgrammes() {
    var items = [], cursor = '';
    do {
      var page = await W.api('/v1/programmes?limit=500' + (cursor ? '&cursor=' + enc(cursor) : ''));
      items = items.concat(page.items || []);
      cursor = page.next_cursor || '';
    } while (cursor);
    return items;
  }

  async function loadOverview() {
    try {
      var period = $('ov-period').value || month(new Date());
      var got = await Promise.all([W.api('/v1/ops/overview?period=' + enc(period)), allProgrammes()]);
      await C().nameCompanies(got[1]); // recurring programmes' audiences read as names
      state.overview = got[0];
      state.programmes = got[1];
      renderOverview();
    } catch (e) { C().fail(e); }
  }

  function renderOverview() {
    var o = state.overview, ps = state.programmes;
    if (!o || !ps) return;
    var stat = C().stat;
    var covered = 0, overage = 0, calls = 0;
    o.days.forEach(function (d) { covered += d.covered_seconds; overage += d.overage_seconds; calls += d.calls; });
    C().fill($('ov-stats'), [
      stat(t('ov.covered'), W.num(W.minutes(covered)), 'ov-covered'), stat(t('ov.overage'), W.num(W.minutes(overage)), 'ov-overage'),
      stat(t('ov.calls'), W.num(calls), 'ov-calls'),
      h('span', { class: 'badge ' + (o.status === 'closed' ? 'done' : 'running') }, [t('ov.status.' + o.status)])
    ]);
    C().fill($('ov-programmes'), [programmesTable(ps)]);
    var kids = [chart(o)];
    if (o.adjustments && o.adjustments.calls) kids.push(h('p', { class: 'muted small' }, [t('ov.adjustments', W.num(o.adjustments.calls))]));
    C().fill($('ov-chart'), kids);
    C().fill($('ov-top'), [topTable(o.top_overage || [])]);
  }

  function programmesTable(ps) {
    if (!ps.length) return h('p', { class: 'muted' }, [t('ov.noProgrammes')]);
    return h('div', { class: 'scroll' }, [h('table', { class: 'cards', id: 'ov-programmes-table' }, [
      h('thead', {}, [h('tr', {}, [
        h('th', {}, [t('prog.name')]), h('th', { class: 'num' }, [t('ov.budget')]), h('th', { class: 'num' }, [t('ov.issued')]),
        h('th', { class: 'num' }, [t('ov.granted')]), h('th', { class: 'num' }, [t('ov.used')]), h('th', {}, [''])
      ])]),
      h('tbody', {}, ps.map(function (p) {
        var share = p.seconds_granted ? p.seconds_used / p.seconds_granted : 0;
        var budget = p.budget_packs ? W.num(p.budget_packs) : t('prog.unlimited');
        var issued = W.num(p.packs_issued);
        // A recurring programme's budget is a month's: this month's packs
        // are set against it.
        if (p.recurrence) {
          budget = t('prog.perMonth', budget);
          issued = t('ov.issuedMonth', W.num(p.month ? p.month.packs_issued : 0), p.month ? p.month.period : '', W.num(p.packs_issued));
        }
        return h('tr', { 'data-programme': p.id, 'data-recurring': p.recurrence ? 'month' : null }, [
          h('td', { 'data-label': '' }, [h('strong', {}, [p.name]), p.recurrence ? h('div', { class: 'small muted recurrence' }, [
            h('span', { class: 'badge recurring' }, [t('prog.recurring')]), ' ', C().audience(p)
          ]) : null]),
          h('td', { class: 'num', 'data-label': t('ov.budget') }, [budget]),
          h('td', { class: 'num issued', 'data-label': t('ov.issued') }, [issued]),
          h('td', { class: 'num', 'data-label': t('ov.granted') }, [W.num(W.minutes(p.seconds_granted))]),
          h('td', { class: 'num used', 'data-label': t('ov.used') }, [W.num(W.minutes(p.seconds_used))]),
          h('td', { 'data-label': '' }, [W.bar(share, t('prog.minutesUsed', Math.round(share * 100)))])
        ]);
      }))
    ])]);
  }

  function svg(tag, attrs, kids) {
    var el = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    (kids || []).forEach(function (k) { el.appendChild(typeof k === 'object' ? k : document.createTextNode(String(k))); });
    return el;
  }

  // chart draws a stacked bar per day (covered below, overage above) in
  // minutes, scaled to the busiest day, with the day of the month below
  // every fifth bar. Plain SVG: no library, no inline style.
  function chart(o) {
    var days = o.days, bw = 14, gap = 3, left = 40, top = 12, ch = 140, bottom = 20;
    var width = left + days.length * (bw + gap), height = top + ch + bottom;
    var max = 1, covered = 0, overage = 0;
    days.forEach(function (d) {
      max = Math.max(max, W.minutes(d.covered_seconds) + W.minutes(d.overage_seconds));
      covered += d.covered_seconds; overage += d.overage_seconds;
    });
    var scale = function (m) { return m / max * ch; };
    var kids = [
      svg('line', { x1: left - 4, y1: top + ch, x2: width, y2: top + ch, class: 'axis' }),
      svg('text', { x: left - 8, y: top + 4, 'text-anchor': 'end', class: 'tick' }, [W.num(max)]),
      svg('text', { x: left - 8, y: top + ch, 'text-anchor': 'end', class: 'tick' }, ['0'])
    ];
    days.forEach(function (d, i) {
      var x = left + i * (bw + gap), cm = W.minutes(d.covered_seconds), om = W.minutes(d.overage_seconds);
      var hc = scale(cm), ho = scale(om);
      kids.push(svg('g', { class: 'day', 'data-date': d.date, 'data-covered': cm, 'data-overage': om }, [
        svg('title', {}, [t('ov.dayTitle', W.date(d.date + 'T00:00:00Z'), W.num(cm), W.num(om))]),
        svg('rect', { x: x, y: top + ch - hc, width: bw, height: hc, class: 'covered' }),
        svg('rect', { x: x, y: top + ch - hc - ho, width: bw, height: ho, class: 'overage' })
      ]));
      if (i === 0 || (i + 1) % 5 === 0) {
        kids.push(svg('text', { x: x + bw / 2, y: top + ch + 14, 'text-anchor': 'middle', class: 'tick' }, [String(i + 1)]));
      }
    });
    var label = t('ov.chartLabel', o.period, W.num(W.minutes(covered)), W.num(W.minutes(overage)));
    return h('figure', { class: 'chart' }, [
      svg('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-label': label, id: 'ov-svg' }, kids),
      h('figcaption', { class: 'legend small' }, [
        h('span', { class: 'key covered' }), t('ov.covered'), ' ', h('span', { class: 'key overage' }), t('ov.overage')
      ])
    ]);
  }

  function topTable(top) {
    if (!top.length) return h('p', { class: 'muted' }, [t('ov.noOverage')]);
    return h('table', { class: 'cards', id: 'ov-top-table' }, [
      h('thead', {}, [h('tr', {}, [h('th', {}, [t('co.name')]), h('th', { class: 'num' }, [t('ov.overage')]), h('th', { class: 'num' }, [t('ov.amount')]), h('th', { class: 'num' }, [t('ov.calls')])])]),
      h('tbody', {}, top.map(function (c) {
        return h('tr', { 'data-company': c.company_id }, [
          h('td', { 'data-label': '' }, [h('strong', {}, [c.name])]),
          h('td', { class: 'num', 'data-label': t('ov.overage') }, [W.num(W.minutes(c.overage_seconds))]),
          h('td', { class: 'num', 'data-label': t('ov.amount') }, [money(c.overage_amount)]),
          h('td', { class: 'num', 'data-label': t('ov.calls') }, [W.num(c.calls)])
        ]);
      }))
    ]);
  }

  function money(m) {
    try {
      return new Intl.NumberFormat(W.lang(), { style: 'currency', currency: m.currency || 'CNY' }).format(m.minor / 100);
    } catch (e) { return (m.minor / 100).toFixed(2) + ' ' + (m.currency || ''); }
  }

  // ---- pickers: find a company or programme by name where an id is asked ----

  // attachPicker makes input (data-pick="company|programme", or a function
  // naming the kind now) suggest up to 8 matches by name as it is typed;
  // choosing one puts its id in the input, shows its name beside and calls
  // onPick, when given, with the company or programme.
  function attachPicker(input, kindOf, onPick) {
    var list = h('div', { class: 'picks', role: 'listbox' });
    var picked = h('span', { class: 'picked small muted' });
    input.insertAdjacentElement('afterend', list);
    list.insertAdjacentElement('afterend', picked);
    input.placeholder = t('pick.placeholder');
    var timer = 0, asked = 0;
    input.addEventListener('input', function () {
      clearTimeout(timer);
      W.clear(picked);
      var kind = kindOf(), q = input.value.trim();
      if (!kind || !q || /^(co|pg)_[0-9A-Z]{26}$/.test(q)) { W.clear(list); return; }
      timer = setTimeout(async function () {
        var mine = ++asked;
        try {
          var page = await W.api('/v1/' + (kind === 'company' ? 'companies' : 'programmes') + '?limit=8&q=' + enc(q));
          if (mine !== asked) return; // a later keystroke asked again
          var items = page.items || [];
          C().fill(list, items.length ? items.map(function (it) {
            return h('button', { type: 'button', class: 'pick', role: 'option', 'data-id': it.id, onclick: function () {
              input.value = it.id;
              picked.textContent = it.name;
              W.clear(list);
              if (onPick) onPick(it);
            } }, [it.name, ' ', h('span', { class: 'mono muted' }, [it.id])]);
          }) : [h('span', { class: 'muted small' }, [t('pick.none')])]);
        } catch (e) { C().fail(e); }
      }, 250);
    });
  }

  function attachPickers() {
    attachPicker($('crew-company'), function () { return 'company'; });
    attachPicker($('upload-company'), function () { return 'company'; });
    attachPicker($('programme-id'), function () { return 'programme'; });
    attachPicker($('issue-programme'), function () { return 'programme'; });
    attachPicker($('prog-company'), function () { return 'company'; }); // a monthly programme's audience
    attachPicker($('issue-target'), function () {
      return document.querySelector('input[name="issue-kind"]:checked').value === 'company' ? 'company' : '';
    });
    attachPicker($('st-id'), function () {
      var k = $('st-kind').value;
      return k === 'company' || k === 'programme' ? k : '';
    });
    ['crew-company', 'upload-company', 'programme-id', 'issue-programme', 'issue-target', 'st-id', 'prog-company'].forEach(function (id) { $(id).setAttribute('data-pick', ''); });
  }

  // ---- companies ----

  async function loadCompanies(more) {
    var q = new URLSearchParams({ limit: '50' });
    var c = state.companies;
    if (!more) c.q = $('co-q').value.trim();
    if (c.q) q.set('q', c.q);
    if (more && c.cursor) q.set('cursor', c.cursor);
    try {
      var page = await W.api('/v1/companies?' + q);
      c.items = more ? c.items.concat(page.items || []) : (page.items || []);
      c.cursor = page.next_cursor || '';
      renderCompanies();
    } catch (e) { C().fail(e); }
  }

  function renderCompanies() {
    var c = state.companies;
    var rows = c.items.map(function (co) {
      return h('tr', { 'data-company': co.id }, [
        h('td', { 'data-label': '' }, [h('strong', {}, [co.name])]),
        h('td', { class: 'mono', 'data-label': t('co.id') }, [co.id]),
        h('td', { class: 'mono', 'data-label': t('co.reg') }, [co.registration_no]),
        h('td', { 'data-label': t('co.since') }, [W.date(co.created_at)])
      ]);
    });
    if (!rows.length) rows = [h('tr', {}, [h('td', { colspan: '4', class: 'muted' }, [t('co.empty')])])];
    C().fill($('co-rows'), rows);
    W.show('co-more', !!c.cursor);
  }

  async function createCompany() {
    var co = await W.api('/v1/companies', { method: 'POST', body: { name: $('co-name').value.trim(), registration_no: $('co-reg').value.trim() } });
    $('co-name').value = '';
    $('co-reg').value = '';
    C().say(t('co.created', co.name, co.id), 'ok');
    $('co-q').value = '';
    await loadCompanies(false);
    // The list is oldest first: a new company is on its last page.
    while (state.companies.cursor && !state.companies.items.some(function (x) { return x.id === co.id; })) await loadCompanies(true);
  }

  // ---- operations ----

  // twoStep runs fn on the second click of button within 5 s: the first
  // only asks for confirmation, in the button itself.
  function twoStep(button, confirmText, fn) {
    if (button.getAttribute('data-armed') !== '1') {
      button.setAttribute('data-armed', '1');
      button.setAttribute('data-label', button.textContent);
      button.textContent = confirmText;
      button.classList.add('danger');
      setTimeout(function () { disarm(button); }, 5000);
      return;
    }
    disarm(button);
    C().busy(button, fn);
  }
  function disarm(button) {
    if (button.getAttribute('data-armed') !== '1') return;
    button.removeAttribute('data-armed');
    button.textContent = button.getAttribute('data-label');
    button.classList.remove('danger');
  }

  // findForm puts, above the seafarer ID, what staff who do not know the id
  // use: the company (the company picker) and part of the seafarer's name or
  // MSISDN, with the matching seafarers below to choose from.
  function findForm() {
    var company = h('input', { class: 'id', id: 'ops-company', autocomplete: 'off', 'data-pick': '' });
    var find = h('input', { id: 'ops-find', type: 'search', autocomplete: 'off', onkeydown: function (ev) {
      if (ev.key !== 'Enter') return;
      ev.preventDefault();
      var only = $('ops-found').querySelectorAll('.pick');
      if (only.length === 1) only[0].click();
    } });
    var form = h('div', { class: 'grid', id: 'find-seafarer' }, [
      h('label', {}, [h('span', { 'data-i18n': 'ops.company' }, [t('ops.company')]), company]),
      h('label', {}, [h('span', { 'data-i18n': 'ops.find' }, [t('ops.find')]), find])
    ]);
    var grants = $('grants-form');
    grants.insertAdjacentElement('beforebegin', form);
    grants.insertAdjacentElement('beforebegin', h('div', { class: 'picks', id: 'ops-found', role: 'listbox' }));
    // A company picked (again) is read afresh: its crew may have changed.
    attachPicker(company, function () { return 'company'; }, function () { find.focus(); findSeafarers(); });
    company.addEventListener('input', function () { W.clear($('ops-found')); });
    find.addEventListener('input', findSeafarers);
  }

  // search asks the company's crew for q (GET /v1/companies/{id}/seafarers?q=:
  // part of the name in any case, or a number's digits in the MSISDN), one
  // more than is shown, so the list can say there are more.
  async function search(company, q) {
    var page = await W.api('/v1/companies/' + enc(company) + '/seafarers?limit=' + (FOUND_SHOWN + 1) + '&q=' + enc(q));
    return { items: page.items || [], more: !!page.next_cursor };
  }

  // findSeafarers lists, as choices, the seafarers of the company in
  // #ops-company that match what #ops-find holds.
  async function findSeafarers() {
    var list = $('ops-found'), company = $('ops-company').value.trim(), q = $('ops-find').value.trim();
    var mine = ++finding;
    if (!q) { W.clear(list); return; }
    if (!/^co_[0-9A-Z]{26}$/.test(company)) { C().fill(list, [h('span', { class: 'muted small' }, [t('ops.needCompany')])]); return; }
    var found;
    try { found = await search(company, q); } catch (e) { if (mine === finding) C().fail(e); return; }
    if (mine !== finding) return; // typed again meanwhile
    if (!found.items.length) { C().fill(list, [h('span', { class: 'muted small' }, [t('pick.none')])]); return; }
    var kids = found.items.slice(0, FOUND_SHOWN).map(function (sf) {
      return h('button', { type: 'button', class: 'pick', role: 'option', 'data-seafarer': sf.id, onclick: function () { chooseSeafarer(sf); } }, [
        sf.name, ' ', h('span', { class: 'mono muted' }, [sf.msisdn]),
        sf.status === 'active' ? null : h('span', { class: 'muted' }, [' · ', t('sf.' + sf.status) || sf.status])
      ]);
    });
    if (found.more || found.items.length > FOUND_SHOWN) kids.push(h('span', { class: 'muted small' }, [t('ops.more')]));
    C().fill(list, kids);
  }

  // chooseSeafarer puts sf's id where staff who know it type it and shows
  // sf's grants, as "Show grants" does.
  function chooseSeafarer(sf) {
    state.chosen = sf;
    $('ops-seafarer').value = sf.id;
    W.clear($('ops-found'));
    C().busy($('grants-form').querySelector('button[type=submit]'), showGrants);
  }

  async function showGrants() {
    var id = $('ops-seafarer').value.trim();
    var a = await W.api('/v1/seafarers/' + enc(id) + '/allowance');
    var who = state.chosen && state.chosen.id === id ? state.chosen : null;
    state.grants = { seafarer: id, who: who, items: a.grants || [] };
    renderGrants();
  }

  function renderGrants() {
    var g = state.grants;
    if (!g) return;
    var kids = g.who ? [h('p', { id: 'ops-grants-of' }, [t('ops.grantsOf', g.who.name, g.who.msisdn)])] : [];
    if (!g.items.length) { C().fill($('ops-grants'), kids.concat([h('p', { class: 'muted' }, [t('ops.noGrants')])])); return; }
    C().fill($('ops-grants'), kids.concat([h('table', { class: 'cards', id: 'ops-grants-table' }, [
      h('thead', {}, [h('tr', {}, [h('th', {}, [t('ops.grant')]), h('th', {}, [t('col.status')]), h('th', { class: 'num' }, [t('ops.left')]), h('th', {}, [t('ops.expires')]), h('th', {}, [''])])]),
      h('tbody', {}, g.items.map(function (gr) {
        var voidable = gr.status === 'active' || gr.status === 'pending';
        return h('tr', { 'data-grant': gr.id }, [
          h('td', { class: 'mono', 'data-label': '' }, [gr.id]),
          h('td', { 'data-label': t('col.status') }, [h('span', { class: 'badge ' + gr.status }, [gr.status])]),
          h('td', { class: 'num', 'data-label': t('ops.left') }, [W.num(W.minutes(gr.remaining_seconds))]),
          h('td', { 'data-label': t('ops.expires') }, [W.date(gr.expires_at)]),
          h('td', { 'data-label': '' }, [voidable ? h('button', { type: 'button', class: 'secondary void', onclick: function (ev) {
            var button = ev.currentTarget;
            twoStep(button, t('ops.confirmVoid'), async function () {
              var e = await W.api('/v1/seafarers/' + enc(g.seafarer) + '/grants/' + enc(gr.id) + ':void', { method: 'POST' });
              await showGrants();
              C().say(t('ops.voided', gr.id, W.num(W.minutes(e.seconds))), 'ok');
            });
          } }, [t('ops.voidOne')]) : null])
        ]);
      }))
    ])]));
  }

  async function closePeriod() {
    state.closed = await W.api('/v1/periods/' + enc($('ops-period').value) + ':close', { method: 'POST' });
    renderClosed();
  }

  function renderClosed() {
    var st = state.closed;
    if (!st) return;
    var kids = [h('p', { id: 'ops-closed' }, [t('ops.closedState', st.period, t('ov.status.' + st.status) || st.status)])];
    if (st.seafarers !== undefined && st.seafarers !== null) kids.push(h('p', { class: 'muted small' }, [t('ops.closedCount', W.num(st.seafarers))]));
    C().fill($('ops-close-result'), kids);
  }

  async function runReconciliation() {
    var file = $('ops-file').files[0];
    if (!file) { C().say(t('upload.needFile')); return; }
    state.reconciliation = await W.api('/v1/reconciliations?period=' + enc($('ops-rec-period').value), {
      method: 'POST', body: await file.text(), headers: { 'Content-Type': 'text/csv; charset=utf-8' }
    });
    renderReconciliation();
  }

  function renderReconciliation() {
    var r = state.reconciliation;
    if (!r) return;
    var stat = C().stat;
    var rows = (r.differences || []).map(function (d) { return [d.msisdn, d.field, W.num(d.wuyou), W.num(d.carrier)]; })
      .concat((r.missing_in_wuyou || []).map(function (m) { return [m.msisdn, t('ops.missingWuyou'), '–', W.num(m.calls)]; }))
      .concat((r.missing_in_carrier || []).map(function (m) { return [m.msisdn, t('ops.missingCarrier'), W.num(m.calls), '–']; }));
    C().fill($('ops-reconcile-result'), [
      h('div', { class: 'stats' }, [
        stat(t('ops.matched'), W.num(r.matched), 'rec-matched'), stat(t('ops.differences'), W.num((r.differences || []).length), 'rec-differences'),
        stat(t('ops.missingWuyou'), W.num((r.missing_in_wuyou || []).length)), stat(t('ops.missingCarrier'), W.num((r.missing_in_carrier || []).length)),
        stat(t('ops.invalid'), W.num(r.invalid_row_count || 0))
      ]),
      rows.length ? h('table', { class: 'cards' }, [
        h('thead', {}, [h('tr', {}, [h('th', {}, ['MSISDN']), h('th', {}, [t('ops.field')]), h('th', { class: 'num' }, [t('ops.wuyou')]), h('th', { class: 'num' }, [t('ops.carrier')])])]),
        h('tbody', {}, rows.map(function (cells) {
          return h('tr', {}, cells.map(function (v, i) { return h('td', { class: i > 1 ? 'num' : (i === 0 ? 'mono' : '') }, [v]); }));
        }))
      ]) : h('p', { class: 'muted' }, [t('ops.allMatch')])
    ]);
  }

  // ---- wiring ----

  function wire() {
    var now = new Date();
    var last = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
    $('ov-period').value = month(now);
    $('ops-period').value = month(last);
    $('ops-rec-period').value = month(last);
    $('ov-period').addEventListener('change', loadOverview);
    $('ov-refresh').addEventListener('click', function () { C().busy($('ov-refresh'), loadOverview); });
    C().onSubmit('company-form', 'button[type=submit]', createCompany);
    C().onSubmit('company-search', 'button[type=submit]', function () { return loadCompanies(false); });
    $('co-more').addEventListener('click', function () { C().busy($('co-more'), function () { return loadCompanies(true); }); });
    C().onSubmit('grants-form', 'button[type=submit]', showGrants);
    findForm();
    $('close-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var b = $('close-form').querySelector('button[type=submit]');
      twoStep(b, t('ops.confirmClose', $('ops-period').value), closePeriod);
    });
    C().onSubmit('reconcile-form', 'button[type=submit]', runReconciliation);
    attachPickers();
  }

  return { enter: enter, reset: reset, redraw: redraw };
})();
