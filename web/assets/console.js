// Wuyou console for company and union staff: crew and balances, crew list
// upload, programmes, issuances with live progress, monthly statements.
// Only what the token's role may do is shown; the API enforces it anyway.
(function () {
  'use strict';
  var t = W.t, $ = W.$, h = W.h;
  var enc = encodeURIComponent;
  var COLUMNS = ['seafarer_book_no', 'name', 'nationality', 'msisdn', 'vessel_imo', 'vessel_name', 'sign_on', 'sign_off', 'union_member_no'];
  var POLL_MS = 1000;

  var me = null; // the token's claims
  var crew = { company: '', vessel: '', items: [], cursor: '' };
  var upload = null; // {report, header, records}
  var issuance = { pending: null, timer: 0 };
  var shown = { programme: null, statement: null }; // redrawn when the language changes

  W.addStrings({
    en: {
      title: 'Wuyou console', consoleName: 'Wuyou console',
      signInHelp: 'Paste the token your identity provider issued to you.',
      wrongRole: 'This console is for company and union staff.',
      'wrongRole.seafarer': 'This console is for company and union staff. Seafarers see their minutes at /.',
      'wrongRole.carrier': 'This console is for company and union staff; carrier systems use the API.',
      'role.union': 'Union staff', 'role.company': 'Company · {0}',
      'tab.crew': 'Crew', 'tab.upload': 'Upload crew list', 'tab.programmes': 'Programmes', 'tab.issue': 'Issue packs', 'tab.statements': 'Statements',
      companyId: 'Company ID', programmeId: 'Programme ID', show: 'Show', more: 'More', working: 'Working…',
      needCompany: 'Enter a company ID.', created: 'Created {0}.',
      'crew.title': 'Crew and balances', 'crew.vessel': 'Vessel IMO (optional)', 'crew.status': 'Status', 'crew.any': 'Any',
      'crew.show': 'Show crew', 'crew.count': 'Seafarers shown', 'crew.active': 'Active', 'crew.minutes': 'Minutes left in total',
      'crew.none': 'Without free minutes', 'crew.empty': 'No seafarers match.',
      'sf.active': 'Active', 'sf.signed_off': 'Signed off', 'sf.suspended': 'Suspended',
      'col.name': 'Name', 'col.book': 'Book no.', 'col.phone': 'Phone', 'col.vessel': 'Vessel', 'col.signOn': 'Sign-on',
      'col.status': 'Status', 'col.left': 'Minutes left', 'col.row': 'Row', 'col.result': 'Result', 'col.details': 'Details',
      'col.seafarer': 'Seafarer', 'col.reason': 'Reason', 'col.signOff': 'Sign-off', 'col.actions': 'Actions',
      'sign.date': 'Sign-on / sign-off date', 'sign.dateHint': 'Empty: today (UTC)', 'sign.off': 'Sign off', 'sign.on': 'Sign on',
      'sign.offLabel': 'Sign {0} off', 'sign.onLabel': 'Sign {0} on',
      'sign.vesselOff': 'Sign the whole vessel off', 'sign.vesselOn': 'Sign the whole vessel on',
      'sign.vesselHelp': "Vessel {0}: sign off every active seafarer of the company on it, or sign on again every signed-off one. Other companies' crew is not touched.",
      'sign.doneOff': '{0} signed off ({1}).', 'sign.doneOn': '{0} signed on ({1}).',
      'sign.vesselDoneOff': 'Vessel {0} signed off ({1}): {2} changed, {3} unchanged.',
      'sign.vesselDoneOn': 'Vessel {0} signed on ({1}): {2} changed, {3} unchanged.',
      'upload.title': 'Upload a crew list',
      'upload.help': 'A CSV file (UTF-8) whose first line names the columns below; seafarer_book_no, name and msisdn are required. Each row stands alone: a bad row is reported and the others are enrolled.',
      'upload.file': 'CSV file', 'upload.send': 'Upload', 'upload.template': 'Download an empty template',
      'upload.result': 'Result', 'upload.total': 'Rows', 'upload.created': 'Enrolled', 'upload.updated': 'Updated',
      'upload.failed': 'Failed', 'upload.failedCsv': 'Download failed rows (CSV)', 'upload.needFile': 'Choose a CSV file.',
      'res.created': 'Enrolled', 'res.updated': 'Updated', 'res.failed': 'Failed',
      'prog.new': 'New programme', 'prog.name': 'Name', 'prog.packMinutes': 'Minutes per pack', 'prog.validDays': 'Valid for (days)',
      'prog.priority': 'Priority (lower is drawn first)', 'prog.budget': 'Budget in packs (0 = unlimited)', 'prog.starts': 'Starts',
      'prog.ends': 'Ends', 'prog.create': 'Create programme', 'prog.usage': 'Budget and usage',
      'prog.pack': '{0} min per pack, valid {1} days, priority {2}', 'prog.runs': 'Runs {0} – {1}',
      'prog.issued': 'Packs issued', 'prog.budgetLeft': 'Packs left in budget', 'prog.unlimited': 'Unlimited',
      'prog.granted': 'Minutes granted', 'prog.used': 'Minutes used', 'prog.budgetUsed': 'Budget used: {0}%', 'prog.minutesUsed': 'Granted minutes used: {0}%',
      'prog.kind': 'How packs are given', 'prog.once': 'Packs issued by hand', 'prog.monthly': 'Monthly, while signed on',
      'prog.budgetMonthly': 'Budget in packs a month (0 = unlimited)', 'prog.audience': 'Who gets a pack each month',
      'prog.toCompany': "A company's crew", 'prog.toVessel': "A vessel's crew", 'prog.toAll': 'Everyone enrolled',
      'prog.rollover': 'Most minutes carried over to the next month', 'prog.timeZone': 'Time zone whose months count',
      'prog.recurring': 'Monthly, while signed on', 'prog.recurrence': 'A pack every month ({0}) to each seafarer signed on; up to {1} unused minutes carry over',
      'prog.monthPack': '{0} min a month, priority {1}',
      'aud.company': "Crew of {0}", 'aud.vessel': 'Crew of vessel IMO {0}', 'aud.all': 'Everyone enrolled',
      'prog.monthIssued': 'Packs issued in {0}', 'prog.allIssued': 'Packs issued, all months', 'prog.monthLeft': 'Packs left this month',
      'prog.perMonth': '{0} a month', 'prog.fixMarked': 'Correct the marked fields.',
      'prog.unit': 'What packs hold', 'unit.seconds': 'Call minutes', 'unit.bytes': 'Data', 'unit.sms': 'SMS',
      'prog.packData': 'Data per pack', 'prog.packSms': 'SMS per pack',
      'prog.rolloverData': 'Most data carried over to the next month', 'prog.rolloverSms': 'Most SMS carried over to the next month',
      'prog.lowPercent': 'Low-balance alert at this % left (optional)', 'prog.lowMinutes': '…or when this many minutes are left (optional)',
      'prog.lowData': '…or when this much data is left (optional)', 'prog.lowSms': '…or when this many SMS are left (optional)',
      'prog.lowHelp': 'With neither, seafarers are told when 20% of their packs is left.',
      'prog.packAmount': '{0} per pack, valid {1} days, priority {2}', 'prog.monthAmount': '{0} a month, priority {1}',
      'prog.recurrenceAmount': 'A pack every month ({0}) to each seafarer signed on; up to {1} unused carries over',
      'prog.grantedAmount': 'Granted', 'prog.usedAmount': 'Used', 'prog.amountUsed': 'Granted amount used: {0}%',
      'prog.notify': 'Low-balance alerts: {0}', 'prog.atPercent': 'at {0}% left', 'prog.atRemaining': 'at {0} left', 'prog.sep': ', ',
      'prog.min': '{0} min', 'prog.sms': '{0} SMS',
      'issue.title': 'Issue packs', 'issue.to': 'Issue to', 'issue.company': "A company's crew", 'issue.vessel': "A vessel's crew",
      'issue.vesselImo': 'Vessel IMO', 'issue.send': 'Issue packs',
      'issue.help': "One pack per seafarer. Seafarers who are not active are skipped; nothing is issued beyond the programme's budget.",
      'issue.heading': 'Issuance {0}', 'issue.running': 'Running', 'issue.done': 'Done', 'issue.progress': '{0} of {1} seafarers processed',
      'issue.issued': 'Issued', 'issue.skipped': 'Skipped (not active)', 'issue.failed': 'Failed', 'issue.total': 'Seafarers',
      'issue.failedFor': '{0}: {1} seafarers (show)', 'issue.firstFailures': 'The first {0} of {1} failures are listed.', 'reason.budget_exhausted': 'Budget exhausted', 'reason.seafarer_not_found': 'Seafarer not found',
      'st.title': 'Monthly statement', 'st.period': 'Month', 'st.payer': 'Payer', 'st.programme': 'Programme', 'st.company': 'Company',
      'st.seafarer': 'Seafarer', 'st.id': 'Payer ID', 'st.csv': 'Download CSV', 'st.calls': 'Calls', 'st.billable': 'Billable minutes',
      'st.covered': 'Covered minutes', 'st.overage': 'Overage minutes', 'st.overageAmount': 'Overage billed', 'st.welfare': 'Welfare fund cost',
      'st.lines': 'Lines', 'st.noLines': 'No lines for this month.', 'st.status.open': 'Open: figures may still change',
      'st.status.closed': 'Closed', 'st.when': 'When',
      'st.country': 'Country', 'st.adjusts': 'Adjusts period'
    },
    'zh-CN': {
      title: '出海无忧控制台', consoleName: '控制台',
      signInHelp: '请粘贴身份提供方签发给您的令牌。',
      wrongRole: '本控制台供公司和工会工作人员使用。',
      'wrongRole.seafarer': '本控制台供公司和工会工作人员使用。船员请在 / 查看剩余分钟。',
      'wrongRole.carrier': '本控制台供公司和工会工作人员使用；运营商系统请使用 API。',
      'role.union': '工会工作人员', 'role.company': '公司 · {0}',
      'tab.crew': '船员', 'tab.upload': '上传船员名单', 'tab.programmes': '福利计划', 'tab.issue': '发放套餐', 'tab.statements': '对账单',
      companyId: '公司 ID', programmeId: '计划 ID', show: '查看', more: '更多', working: '处理中…',
      needCompany: '请输入公司 ID。', created: '已创建 {0}。',
      'crew.title': '船员与余额', 'crew.vessel': '船舶 IMO（可选）', 'crew.status': '状态', 'crew.any': '全部',
      'crew.show': '查看船员', 'crew.count': '显示船员', 'crew.active': '在职', 'crew.minutes': '剩余分钟合计',
      'crew.none': '无免费分钟', 'crew.empty': '没有符合条件的船员。',
      'sf.active': '在职', 'sf.signed_off': '已离船', 'sf.suspended': '已暂停',
      'col.name': '姓名', 'col.book': '海员证号', 'col.phone': '手机号', 'col.vessel': '船舶', 'col.signOn': '上船日期',
      'col.status': '状态', 'col.left': '剩余分钟', 'col.row': '行', 'col.result': '结果', 'col.details': '详情',
      'col.seafarer': '船员', 'col.reason': '原因', 'col.signOff': '离船日期', 'col.actions': '操作',
      'sign.date': '上船 / 离船日期', 'sign.dateHint': '留空为今天（UTC）', 'sign.off': '离船', 'sign.on': '上船',
      'sign.offLabel': '{0} 离船', 'sign.onLabel': '{0} 上船',
      'sign.vesselOff': '整船船员离船', 'sign.vesselOn': '整船船员上船',
      'sign.vesselHelp': '船舶 {0}：本公司在该船的在职船员全部离船，或已离船船员全部重新上船。不影响其他公司的船员。',
      'sign.doneOff': '{0} 已离船（{1}）。', 'sign.doneOn': '{0} 已上船（{1}）。',
      'sign.vesselDoneOff': '船舶 {0} 已整船离船（{1}）：{2} 人变更，{3} 人未变。',
      'sign.vesselDoneOn': '船舶 {0} 已整船上船（{1}）：{2} 人变更，{3} 人未变。',
      'upload.title': '上传船员名单',
      'upload.help': 'CSV 文件（UTF-8），第一行为下列列名；seafarer_book_no、name、msisdn 必填。每行独立处理：出错的行会单独报告，其余行照常登记。',
      'upload.file': 'CSV 文件', 'upload.send': '上传', 'upload.template': '下载空白模板',
      'upload.result': '结果', 'upload.total': '行数', 'upload.created': '新登记', 'upload.updated': '已更新',
      'upload.failed': '失败', 'upload.failedCsv': '下载失败行（CSV）', 'upload.needFile': '请选择 CSV 文件。',
      'res.created': '新登记', 'res.updated': '已更新', 'res.failed': '失败',
      'prog.new': '新建福利计划', 'prog.name': '名称', 'prog.packMinutes': '每个套餐分钟数', 'prog.validDays': '有效天数',
      'prog.priority': '优先级（数字小的先扣）', 'prog.budget': '预算套餐数（0 为不限）', 'prog.starts': '开始日期',
      'prog.ends': '结束日期', 'prog.create': '创建计划', 'prog.usage': '预算与使用',
      'prog.pack': '每个套餐 {0} 分钟，有效 {1} 天，优先级 {2}', 'prog.runs': '{0} 至 {1}',
      'prog.issued': '已发放套餐', 'prog.budgetLeft': '剩余预算套餐', 'prog.unlimited': '不限',
      'prog.granted': '已发放分钟', 'prog.used': '已使用分钟', 'prog.budgetUsed': '预算已用 {0}%', 'prog.minutesUsed': '已发分钟已用 {0}%',
      'prog.kind': '套餐发放方式', 'prog.once': '手动发放套餐', 'prog.monthly': '在船期间每月发放',
      'prog.budgetMonthly': '每月预算套餐数（0 为不限）', 'prog.audience': '每月发放对象',
      'prog.toCompany': '某公司全体船员', 'prog.toVessel': '某船全体船员', 'prog.toAll': '全体登记船员',
      'prog.rollover': '可结转到下月的最多分钟数', 'prog.timeZone': '按此时区计算月份',
      'prog.recurring': '在船期间每月发放', 'prog.recurrence': '每月（{0}）向每位在船船员发放一个套餐；未用分钟最多结转 {1} 分钟',
      'prog.monthPack': '每月 {0} 分钟，优先级 {1}',
      'aud.company': '{0} 的船员', 'aud.vessel': '船舶 IMO {0} 的船员', 'aud.all': '全体登记船员',
      'prog.monthIssued': '{0} 已发放套餐', 'prog.allIssued': '历月已发放套餐', 'prog.monthLeft': '本月剩余预算套餐',
      'prog.perMonth': '每月 {0}', 'prog.fixMarked': '请修改标出的字段。',
      'prog.unit': '套餐内容', 'unit.seconds': '通话分钟', 'unit.bytes': '流量', 'unit.sms': '短信',
      'prog.packData': '每个套餐流量', 'prog.packSms': '每个套餐短信条数',
      'prog.rolloverData': '可结转到下月的最多流量', 'prog.rolloverSms': '可结转到下月的最多短信条数',
      'prog.lowPercent': '余量低于此百分比时提醒（可选）', 'prog.lowMinutes': '…或剩余分钟数低于此值时提醒（可选）',
      'prog.lowData': '…或剩余流量低于此值时提醒（可选）', 'prog.lowSms': '…或剩余短信条数低于此值时提醒（可选）',
      'prog.lowHelp': '两项都不填时，套餐剩余 20% 时提醒船员。',
      'prog.packAmount': '每个套餐 {0}，有效 {1} 天，优先级 {2}', 'prog.monthAmount': '每月 {0}，优先级 {1}',
      'prog.recurrenceAmount': '每月（{0}）向每位在船船员发放一个套餐；未用部分最多结转 {1}',
      'prog.grantedAmount': '已发放', 'prog.usedAmount': '已使用', 'prog.amountUsed': '已发放额度已用 {0}%',
      'prog.notify': '余量提醒：{0}', 'prog.atPercent': '剩余 {0}% 时', 'prog.atRemaining': '剩余 {0} 时', 'prog.sep': '；',
      'prog.min': '{0} 分钟', 'prog.sms': '{0} 条短信',
      'issue.title': '发放套餐', 'issue.to': '发放对象', 'issue.company': '某公司全体船员', 'issue.vessel': '某船全体船员',
      'issue.vesselImo': '船舶 IMO', 'issue.send': '发放套餐',
      'issue.help': '每位船员一个套餐。非在职船员将被跳过；发放不会超出计划预算。',
      'issue.heading': '发放批次 {0}', 'issue.running': '进行中', 'issue.done': '已完成', 'issue.progress': '已处理 {0} / {1} 位船员',
      'issue.issued': '已发放', 'issue.skipped': '已跳过（非在职）', 'issue.failed': '失败', 'issue.total': '船员数',
      'issue.failedFor': '{0}：{1} 位船员（查看）', 'issue.firstFailures': '仅列出 {1} 个失败中的前 {0} 个。', 'reason.budget_exhausted': '预算已用完', 'reason.seafarer_not_found': '找不到船员',
      'st.title': '月度对账单', 'st.period': '月份', 'st.payer': '付费方', 'st.programme': '福利计划', 'st.company': '公司',
      'st.seafarer': '船员', 'st.id': '付费方 ID', 'st.csv': '下载 CSV', 'st.calls': '通话次数', 'st.billable': '计费分钟',
      'st.covered': '套餐覆盖分钟', 'st.overage': '超出分钟', 'st.overageAmount': '超出费用', 'st.welfare': '福利基金支出',
      'st.lines': '明细', 'st.noLines': '本月没有明细。', 'st.status.open': '未结账：数字仍可能变化',
      'st.status.closed': '已结账', 'st.when': '时间',
      'st.country': '国家/地区', 'st.adjusts': '调整账期'
    }
  });

  // ---- messages ----

  function say(text, level, fields) {
    var box = $('message');
    W.clear(box);
    box.className = 'alert ' + (level || 'danger');
    if (!text) { box.hidden = true; return; }
    box.appendChild(document.createTextNode(text));
    if (fields && fields.length) {
      box.appendChild(h('ul', { class: 'errors' }, fields.map(function (f) { return h('li', {}, [(f.field ? f.field + ': ' : '') + f.message]); })));
    }
    box.hidden = false;
  }

  function fail(e) {
    if (e.status === 401) { W.setToken(''); showSignIn(e.message); return; }
    say(e.message, 'danger', e.problem && e.problem.errors);
  }

  // busy disables a button while fn runs and reports its failure.
  async function busy(button, fn) {
    say('');
    var label = button.textContent;
    button.disabled = true;
    button.textContent = t('working');
    try { await fn(); } catch (e) { fail(e); } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  // ---- sign-in and roles ----

  function showSignIn(problem) {
    me = null;
    stopPolling();
    if (W.unionConsole) W.unionConsole.reset();
    if (W.auditConsole) W.auditConsole.reset();
    // Nothing of the last person's work stays in the page.
    crew = { company: '', vessel: '', items: [], cursor: '' };
    upload = null;
    shown = { programme: null, statement: null };
    issuance.last = null;
    ['crew-result', 'upload-result', 'issue-view'].forEach(function (id) { W.show(id, false); });
    ['programme-view', 'statement-view', 'crew-rows', 'upload-rows'].forEach(function (id) { W.clear($(id)); });
    ['crew-company', 'upload-company', 'programme-id', 'issue-programme', 'issue-target', 'st-id', 'upload-file', 'crew-sign-date', 'prog-company', 'prog-vessel'].forEach(function (id) { $(id).value = ''; });
    companyNames = {};
    unmarkFields($('programme-form'));
    document.querySelector('input[name="prog-kind"][value="once"]').checked = true;
    $('prog-unit').value = 'seconds';
    ['prog-low-percent', 'prog-low-remaining'].forEach(function (id) { $(id).value = ''; });
    programmeKind();
    W.show('view', false);
    W.show('signout', false);
    $('who').textContent = '';
    W.show('status', false);
    W.show('signin', true);
    $('signin-error').textContent = problem || '';
    W.show('signin-error', !!problem);
  }

  function isUnion() { return me && me.role === 'union'; }

  function enter() {
    var problem = W.signInProblem(W.token(), ['company', 'union']);
    if (problem) { showSignIn(problem); return; }
    me = W.claims(W.token());
    W.show('signin', false);
    W.show('status', false);
    W.show('signout', true);
    W.show('view', true);
    say('');
    var tabs = document.querySelectorAll('.tab');
    for (var i = 0; i < tabs.length; i++) tabs[i].hidden = tabs[i].getAttribute('data-roles').split(' ').indexOf(me.role) < 0;
    var unionOnly = document.querySelectorAll('.union-only');
    for (i = 0; i < unionOnly.length; i++) unionOnly[i].hidden = !isUnion();
    var kind = $('st-kind');
    if (!isUnion()) {
      kind.value = 'company';
      $('st-id').value = me.company_id || '';
    }
    kind.disabled = $('st-id').disabled = !isUnion();
    renderWho();
    var saved = null;
    try { saved = sessionStorage.getItem('wuyou.tab'); } catch (e) { saved = null; }
    select(saved && $('tab-' + saved) && !$('tab-' + saved).hidden ? saved : (isUnion() ? 'overview' : 'crew'));
    if (!isUnion()) { loadCompanyName(); loadCrew(false); }
    if (W.unionConsole) W.unionConsole.enter(me); // union staff's part: console-union.js
    if (W.auditConsole) W.auditConsole.enter(me); // the audit trail: console-audit.js
  }

  function renderWho() {
    if (!me) return;
    $('who').textContent = isUnion() ? t('role.union') : t('role.company', me.companyName || me.company_id || '');
  }

  // A company sees its own name rather than its id.
  async function loadCompanyName() {
    try {
      var c = await W.api('/v1/companies/' + enc(me.company_id));
      if (me && c && c.name) { me.companyName = c.name; renderWho(); }
    } catch (e) { fail(e); }
  }

  function select(name) {
    var tabs = document.querySelectorAll('.tab');
    for (var i = 0; i < tabs.length; i++) {
      var tab = tabs[i], on = tab.id === 'tab-' + name;
      tab.setAttribute('aria-selected', on ? 'true' : 'false');
      $(tab.getAttribute('aria-controls')).hidden = !on;
    }
    try { sessionStorage.setItem('wuyou.tab', name); } catch (e) { /* not remembered */ }
  }

  // companyOf is the company a form acts on: the token's own for a company,
  // the one typed in for union staff.
  function companyOf(inputId) {
    if (!isUnion()) return me.company_id || '';
    var v = $(inputId).value.trim();
    if (v) remember(v);
    return v;
  }
  function remember(company) {
    ['crew-company', 'upload-company'].forEach(function (id) { if (!$(id).value) $(id).value = company; });
  }

  function stat(label, value, id) {
    return h('div', { class: 'stat', id: id }, [h('b', {}, [value]), h('span', {}, [label])]);
  }
  function fill(box, kids) { W.clear(box); kids.forEach(function (k) { box.appendChild(k); }); }

  // ---- crew ----

  async function loadCrew(append) {
    var company = companyOf('crew-company');
    if (!company) { say(t('needCompany')); return; }
    var q = new URLSearchParams({ limit: '100' });
    var vessel = $('crew-vessel').value.trim();
    if (vessel) q.set('vessel_imo', vessel);
    if ($('crew-status').value) q.set('status', $('crew-status').value);
    if (append && crew.cursor) q.set('cursor', crew.cursor);
    try {
      var page = await W.api('/v1/companies/' + enc(company) + '/seafarers?' + q);
      crew.company = company;
      if (!append) crew.vessel = vessel;
      crew.items = append ? crew.items.concat(page.items || []) : (page.items || []);
      crew.cursor = page.next_cursor || '';
      renderCrew();
    } catch (e) { fail(e); }
  }

  function renderCrew() {
    if (!crew.company) return;
    W.show('crew-result', true);
    var seconds = 0, active = 0, none = 0;
    var rows = crew.items.map(function (sf) {
      seconds += sf.remaining_seconds || 0;
      if (sf.status === 'active') active++;
      if (!sf.remaining_seconds) none++;
      return h('tr', {}, [
        h('td', { 'data-label': '' }, [h('strong', {}, [sf.name])]),
        h('td', { class: 'mono', 'data-label': t('col.book') }, [sf.seafarer_book_no]),
        h('td', { class: 'mono', 'data-label': t('col.phone') }, [sf.msisdn]),
        h('td', { 'data-label': t('col.vessel') }, [sf.vessel_name || sf.vessel_imo || '–']),
        h('td', { 'data-label': t('col.signOn') }, [sf.sign_on || '–']),
        h('td', { 'data-label': t('col.signOff') }, [sf.sign_off || '–']),
        h('td', { 'data-label': t('col.status') }, [h('span', { class: 'badge ' + sf.status }, [t('sf.' + sf.status) || sf.status])]),
        h('td', { class: 'num', 'data-label': t('col.left') }, [W.num(W.minutes(sf.remaining_seconds))]),
        h('td', { 'data-label': t('col.actions') }, [signButton(sf)])
      ]);
    });
    if (!rows.length) rows = [h('tr', {}, [h('td', { colspan: '9', class: 'muted' }, [t('crew.empty')])])];
    fill($('crew-rows'), rows);
    fill($('crew-stats'), [
      stat(t('crew.count'), W.num(crew.items.length)), stat(t('crew.active'), W.num(active)),
      stat(t('crew.minutes'), W.num(W.minutes(seconds))), stat(t('crew.none'), W.num(none))
    ]);
    W.show('crew-more', !!crew.cursor);
    // A list of one vessel's crew offers to sign that whole crew off or on.
    W.show('crew-vessel-actions', !!crew.vessel);
    $('crew-vessel-help').textContent = crew.vessel ? t('sign.vesselHelp', crew.vessel) : '';
  }

  // ---- signing on and off ----

  // signDate is the date typed for a sign-on or sign-off; '' lets the API
  // take today (UTC).
  function signDate() { return $('crew-sign-date').value; }

  // signButton signs an active seafarer off or a signed-off one on again;
  // a suspended seafarer has none (lifting a suspension is not signing on).
  function signButton(sf) {
    var off = sf.status === 'active';
    if (!off && sf.status !== 'signed_off') return null;
    var b = h('button', {
      type: 'button', class: 'secondary small', 'data-sign': off ? 'off' : 'on', 'data-seafarer': sf.id,
      'aria-label': t(off ? 'sign.offLabel' : 'sign.onLabel', sf.name)
    }, [t(off ? 'sign.off' : 'sign.on')]);
    b.addEventListener('click', function () { busy(b, function () { return signSeafarer(sf, off); }); });
    return b;
  }

  async function signSeafarer(sf, off) {
    var body = off ? { status: 'signed_off' } : { status: 'active' };
    if (signDate()) body[off ? 'sign_off' : 'sign_on'] = signDate();
    var got = await W.api('/v1/seafarers/' + enc(sf.id), { method: 'PATCH', body: body });
    await loadCrew(false);
    say(t(off ? 'sign.doneOff' : 'sign.doneOn', got.name, off ? got.sign_off : got.sign_on), 'ok');
  }

  async function signVessel(off) {
    var body = signDate() ? { date: signDate() } : {};
    var path = '/v1/companies/' + enc(crew.company) + '/vessels/' + enc(crew.vessel) + (off ? ':sign-off' : ':sign-on');
    var r = await W.api(path, { method: 'POST', body: body });
    await loadCrew(false);
    say(t(off ? 'sign.vesselDoneOff' : 'sign.vesselDoneOn', r.vessel_imo, r.date, W.num(r.changed), W.num(r.unchanged)), 'ok');
  }

  // ---- crew list upload ----

  // parseCSV reads RFC 4180 CSV as the API does: a leading byte order mark
  // dropped, quoted fields with commas, quotes and line breaks, blank lines
  // skipped, so record i here is data row i of the API's report.
  function parseCSV(text) {
    if (text.charCodeAt(0) === 0xFEFF) text = text.slice(1);
    var records = [], rec = [], field = '', quoted = false, i = 0, c;
    function endField() { rec.push(field); field = ''; }
    function endRecord() {
      endField();
      if (!(rec.length === 1 && rec[0] === '')) records.push(rec);
      rec = [];
    }
    for (; i < text.length; i++) {
      c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
      } else if (c === '"' && field.trim() === '') { field = ''; quoted = true; } else if (c === ',') endField();
      else if (c === '\n') endRecord();
      else if (c === '\r' && text[i + 1] === '\n') { /* CRLF: the \n ends the record */ } else field += c;
    }
    if (field !== '' || rec.length) endRecord();
    return records;
  }

  // csvCell is the console's copy of the server's one CSV rule
  // (wuyou.CSVCell, csv.go): NUL dropped; a cell starting with =, +, -, @,
  // a tab or a carriage return gets a leading ' so a spreadsheet does not
  // run it as a formula, except + or - followed by a plain number (an
  // MSISDN, a negative figure), which cannot be a formula.
  function csvCell(f) {
    f = (f === undefined || f === null ? '' : String(f)).replace(/\u0000/g, '');
    if (/^[=@\t\r]/.test(f) || (/^[+-]/.test(f) && !/^[+-]\d+(\.\d+)?$/.test(f))) return "'" + f;
    return f;
  }

  function csvLine(fields) {
    return fields.map(function (f) {
      f = csvCell(f);
      return /[",\r\n]/.test(f) || /^\s|\s$/.test(f) ? '"' + f.replace(/"/g, '""') + '"' : f;
    }).join(',') + '\r\n';
  }

  async function sendCrewList() {
    var file = $('upload-file').files[0];
    if (!file) { say(t('upload.needFile')); return; }
    var company = companyOf('upload-company');
    if (!company) { say(t('needCompany')); return; }
    var text = await file.text();
    var report = await W.api('/v1/companies/' + enc(company) + '/seafarers:bulk', {
      method: 'POST', body: text, headers: { 'Content-Type': 'text/csv; charset=utf-8' }
    });
    var records = parseCSV(text);
    upload = { report: report, header: records[0] || [], rows: records.slice(1), name: file.name };
    renderUpload();
    if (crew.company === company) loadCrew(false);
  }

  function renderUpload() {
    if (!upload) return;
    var r = upload.report, header = upload.header.map(function (c) { return c.trim().toLowerCase(); });
    var col = function (rec, name) { var i = header.indexOf(name); return rec && i >= 0 ? rec[i] : ''; };
    W.show('upload-result', true);
    fill($('upload-stats'), [
      stat(t('upload.total'), W.num(r.total), 'upload-total'), stat(t('upload.created'), W.num(r.created), 'upload-created'),
      stat(t('upload.updated'), W.num(r.updated), 'upload-updated'), stat(t('upload.failed'), W.num(r.failed), 'upload-failed-count')
    ]);
    // Failed rows first: they are what needs doing.
    var results = (r.results || []).slice().sort(function (a, b) {
      return ((a.status === 'failed') ? 0 : 1) - ((b.status === 'failed') ? 0 : 1) || a.row - b.row;
    });
    fill($('upload-rows'), results.map(function (res) {
      var rec = upload.rows[res.row - 1];
      var details = res.status === 'failed'
        ? h('ul', { class: 'errors' }, (res.errors || []).map(function (e) { return h('li', {}, [(e.field ? e.field + ': ' : '') + e.message]); }))
        : h('span', { class: 'mono muted' }, [res.id]);
      return h('tr', { class: res.status === 'failed' ? 'failed' : '', 'data-row': String(res.row) }, [
        h('td', { class: 'num', 'data-label': t('col.row') }, [String(res.row)]),
        h('td', { 'data-label': t('col.result') }, [h('span', { class: 'badge ' + res.status }, [t('res.' + res.status) || res.status])]),
        h('td', { class: 'mono', 'data-label': t('col.book') }, [col(rec, 'seafarer_book_no') || '–']),
        h('td', { 'data-label': t('col.name') }, [col(rec, 'name') || '–']),
        h('td', { class: 'wrap', 'data-label': t('col.details') }, [details])
      ]);
    }));
    W.show('upload-failed', r.failed > 0);
  }

  // failedRowsCSV is the uploaded file's failed rows as they were, with the
  // reasons in an extra "errors" column the API ignores: fix, upload again.
  function failedRowsCSV() {
    var out = '\uFEFF' + csvLine(upload.header.concat(['errors']));
    upload.report.results.forEach(function (res) {
      if (res.status !== 'failed') return;
      var rec = (upload.rows[res.row - 1] || []).slice();
      while (rec.length < upload.header.length) rec.push('');
      out += csvLine(rec.slice(0, upload.header.length).concat([(res.errors || []).map(function (e) {
        return (e.field ? e.field + ': ' : '') + e.message;
      }).join('; ')]));
    });
    return out;
  }

  // ---- programmes ----

  function dateInput(d) { return d.toISOString().slice(0, 10); }

  function monthly() { return document.querySelector('input[name="prog-kind"]:checked').value === 'monthly'; }
  function audienceKind() { return document.querySelector('input[name="prog-audience"]:checked').value; }

  // programmeKind shows the fields of the kind of programme chosen: valid
  // days for packs issued by hand; the audience, rollover and time zone for
  // a monthly one (CONTRACT §7.2). Hidden fields are disabled as well, so
  // the browser neither checks nor sends them.
  function programmeKind() {
    var m = monthly(), aud = audienceKind();
    var field = function (labelId, inputId, on, required) {
      W.show(labelId, on);
      $(inputId).disabled = !on;
      $(inputId).required = on && required;
    };
    field('prog-days-field', 'prog-days', !m, true);
    W.show('prog-audience', m);
    $('prog-audience').disabled = !m;
    field('prog-company-field', 'prog-company', m && aud === 'company', true);
    field('prog-vessel-field', 'prog-vessel', m && aud === 'vessel', true);
    field('prog-rollover-field', 'prog-rollover', m, true);
    field('prog-tz-field', 'prog-tz', m, false);
    var budget = $('prog-budget-label');
    budget.setAttribute('data-i18n', m ? 'prog.budgetMonthly' : 'prog.budget');
    budget.textContent = t(budget.getAttribute('data-i18n'));
    programmeUnit();
  }

  // programmeUnit fits the amount fields to the unit chosen (CONTRACT
  // §7.2): minutes, data in MB or GB (of 1024, as the phone page counts)
  // or a number of SMS; the pack, the rollover and the low-balance amount
  // are all typed in it.
  function programmeUnit() {
    var u = $('prog-unit').value, data = u === 'bytes';
    var relabel = function (id, keys) {
      var el = $(id);
      el.setAttribute('data-i18n', keys[u]);
      el.textContent = t(keys[u]);
    };
    relabel('prog-pack-label', { seconds: 'prog.packMinutes', bytes: 'prog.packData', sms: 'prog.packSms' });
    relabel('prog-rollover-label', { seconds: 'prog.rollover', bytes: 'prog.rolloverData', sms: 'prog.rolloverSms' });
    relabel('prog-low-label', { seconds: 'prog.lowMinutes', bytes: 'prog.lowData', sms: 'prog.lowSms' });
    ['prog-minutes', 'prog-rollover', 'prog-low-remaining'].forEach(function (id) { $(id).step = data ? 'any' : '1'; });
    $('prog-minutes').min = data ? '0.001' : '1';
    $('prog-low-remaining').min = data ? '0.001' : '1';
    W.show('prog-pack-scale', data);
    $('prog-pack-scale').disabled = !data;
    W.show('prog-low-scale', data);
    $('prog-low-scale').disabled = !data;
    var roll = data && !$('prog-rollover').disabled;
    W.show('prog-rollover-scale', roll);
    $('prog-rollover-scale').disabled = !roll;
  }

  var SCALE = { MB: 1048576, GB: 1073741824 };

  // inUnit is what the form's amount field id says in the API's unit:
  // seconds for minutes, bytes for MB or GB (scaleId), a count of SMS.
  function inUnit(id, scaleId) {
    var v = Number($(id).value), u = $('prog-unit').value;
    if (u === 'seconds') return Math.round(v * 60);
    if (u === 'bytes') return Math.round(v * SCALE[$(scaleId).value]);
    return Math.round(v);
  }

  // amountOf writes n of unit as people read it: minutes, MB or GB (one
  // decimal, never rounded up), SMS.
  function amountOf(unit, n) {
    n = n || 0;
    if (unit === 'bytes') {
      var gb = n / SCALE.GB, mb = n / SCALE.MB;
      if (gb >= 1) return W.num(Math.floor(gb * 10) / 10) + ' GB';
      return W.num(mb >= 10 ? Math.floor(mb) : Math.floor(mb * 10) / 10) + ' MB';
    }
    if (unit === 'sms') return t('prog.sms', W.num(n));
    return t('prog.min', W.num(W.minutes(n)));
  }

  // programmeBody is the programme the form describes, as POST
  // /v1/programmes takes it: minutes become seconds.
  function programmeBody() {
    var unit = $('prog-unit').value;
    var body = {
      name: $('prog-name').value.trim(),
      unit: unit,
      priority: Number($('prog-priority').value),
      budget_packs: Number($('prog-budget').value),
      starts_at: $('prog-starts').value + 'T00:00:00Z',
      ends_at: $('prog-ends').value + 'T23:59:59Z'
    };
    if (unit === 'seconds') body.pack_seconds = inUnit('prog-minutes');
    else body.pack_amount = inUnit('prog-minutes', 'prog-pack-scale');
    // Low-balance thresholds; none given leaves the API's 20% rule.
    var notify = [];
    if ($('prog-low-percent').value !== '') notify.push({ percent: Number($('prog-low-percent').value) });
    if ($('prog-low-remaining').value !== '') notify.push({ remaining: inUnit('prog-low-remaining', 'prog-low-scale') });
    if (notify.length) body.notify_at = notify;
    if (!monthly()) {
      body.valid_days = Number($('prog-days').value);
      return body;
    }
    body.recurrence = {
      every: 'month', while: 'signed_on',
      rollover_max: inUnit('prog-rollover', 'prog-rollover-scale'),
      time_zone: $('prog-tz').value.trim() || 'Asia/Shanghai'
    };
    var aud = audienceKind();
    if (aud === 'company') body.company_id = $('prog-company').value.trim();
    else if (aud === 'vessel') body.vessel_imo = $('prog-vessel').value.trim();
    else body.all = true;
    return body;
  }

  // Where each field the API names in a 400 is on the programme form.
  var PROGRAMME_FIELDS = {
    name: 'prog-name', pack_seconds: 'prog-minutes', pack_amount: 'prog-minutes', valid_days: 'prog-days',
    priority: 'prog-priority', budget_packs: 'prog-budget', starts_at: 'prog-starts', ends_at: 'prog-ends',
    company_id: 'prog-company', vessel_imo: 'prog-vessel', all: 'prog-audience', audience: 'prog-audience',
    'recurrence.rollover_max': 'prog-rollover', 'recurrence.time_zone': 'prog-tz',
    'recurrence.every': 'prog-kind', 'recurrence.while': 'prog-kind', recurrence: 'prog-kind',
    unit: 'prog-unit', notify_at: 'prog-low-percent'
  };

  // programmeFields adds to PROGRAMME_FIELDS where each threshold of body
  // sits: notify_at[i] is the percent or the amount, as they were sent.
  function programmeFields(body) {
    var where = Object.assign({}, PROGRAMME_FIELDS);
    (body.notify_at || []).forEach(function (n, i) {
      var id = 'percent' in n ? 'prog-low-percent' : 'prog-low-remaining';
      ['', '.percent', '.remaining'].forEach(function (f) { where['notify_at[' + i + ']' + f] = id; });
    });
    return where;
  }

  // markFields puts each field error of a 400 next to its field (the whole
  // list stays in the form's message, as for every form); unmarkFields
  // takes them away again.
  function markFields(form, where, errors) {
    (errors || []).forEach(function (f, i) {
      var el = where[f.field] && $(where[f.field]);
      if (!el || el.closest('[hidden]')) return;
      var note = h('span', { class: 'field-error', id: form.id + '-error-' + i, 'data-field': f.field }, [f.message]);
      (el.tagName === 'FIELDSET' ? el : el.closest('label') || el.parentNode).appendChild(note);
      el.setAttribute('aria-invalid', 'true');
      el.setAttribute('aria-describedby', note.id);
    });
  }
  function unmarkFields(form) {
    var notes = form.querySelectorAll('.field-error');
    for (var i = 0; i < notes.length; i++) notes[i].remove();
    var marked = form.querySelectorAll('[aria-invalid]');
    for (i = 0; i < marked.length; i++) { marked[i].removeAttribute('aria-invalid'); marked[i].removeAttribute('aria-describedby'); }
  }

  async function createProgramme() {
    var form = $('programme-form');
    unmarkFields(form);
    var p, body = programmeBody();
    try {
      p = await W.api('/v1/programmes', { method: 'POST', body: body });
    } catch (e) {
      if (e.status === 400) markFields(form, programmeFields(body), e.problem && e.problem.errors);
      throw e;
    }
    $('programme-id').value = p.id;
    $('issue-programme').value = p.id;
    say(t('created', p.id), 'ok');
    await nameCompanies([p]);
    renderProgramme(p);
  }

  async function showProgramme() {
    var p = await W.api('/v1/programmes/' + enc($('programme-id').value.trim()));
    await nameCompanies([p]);
    renderProgramme(p);
  }

  var companyNames = {}; // company id -> name, for recurring programmes' audiences

  // nameCompanies looks up, once each, the names of the companies that the
  // recurring programmes in ps are for; one that cannot be read shows as
  // its id.
  async function nameCompanies(ps) {
    var ids = [];
    ps.forEach(function (p) { if (p.company_id && !(p.company_id in companyNames) && ids.indexOf(p.company_id) < 0) ids.push(p.company_id); });
    await Promise.all(ids.map(async function (id) {
      try { companyNames[id] = (await W.api('/v1/companies/' + enc(id))).name; } catch (e) { if (e.status === 401) throw e; }
    }));
  }

  // audience says who a recurring programme's monthly packs go to.
  function audience(p) {
    if (p.company_id) return t('aud.company', companyNames[p.company_id] ? companyNames[p.company_id] + ' (' + p.company_id + ')' : p.company_id);
    if (p.vessel_imo) return t('aud.vessel', p.vessel_imo);
    return t('aud.all');
  }

  function renderProgramme(p) {
    shown.programme = p;
    var unlimited = !p.budget_packs, r = p.recurrence;
    var month = r ? (p.month || { period: '', packs_issued: 0 }) : null;
    var unit = p.unit || 'seconds', secs = unit === 'seconds';
    var pack = p.pack_amount || p.pack_seconds;
    var kids = [h('h3', {}, [
      p.name, ' ', h('span', { class: 'badge', id: 'prog-unit-badge', 'data-unit': unit }, [t('unit.' + unit)]), ' ',
      r ? h('span', { class: 'badge recurring', id: 'prog-recurring' }, [t('prog.recurring')]) : null, r ? ' ' : null,
      h('span', { class: 'mono muted' }, [p.id])
    ])];
    if (r) {
      kids.push(
        h('p', { id: 'prog-audience-text' }, [h('strong', {}, [audience(p)])]),
        h('p', { id: 'prog-pack' }, [secs ? t('prog.monthPack', W.num(W.minutes(pack)), p.priority) : t('prog.monthAmount', amountOf(unit, pack), p.priority)]),
        h('p', { class: 'muted', id: 'prog-recurrence' }, [secs ? t('prog.recurrence', r.time_zone, W.num(W.minutes(r.rollover_max)))
          : t('prog.recurrenceAmount', r.time_zone, amountOf(unit, r.rollover_max))])
      );
    } else {
      kids.push(h('p', { id: 'prog-pack' }, [secs ? t('prog.pack', W.num(W.minutes(pack)), p.valid_days, p.priority)
        : t('prog.packAmount', amountOf(unit, pack), p.valid_days, p.priority)]));
    }
    var notify = (p.notify_at && p.notify_at.length ? p.notify_at : [{ percent: 20 }]).map(function (n) {
      return n.percent ? t('prog.atPercent', W.num(n.percent)) : t('prog.atRemaining', amountOf(unit, n.remaining));
    });
    kids.push(h('p', { class: 'muted', id: 'prog-notify' }, [t('prog.notify', notify.join(t('prog.sep')))]));
    kids.push(h('p', { class: 'muted' }, [t('prog.runs', W.date(p.starts_at), W.date(p.ends_at))]));
    var granted = secs ? p.seconds_granted : p.granted, used = secs ? p.seconds_used : p.used;
    var usage = secs ? [stat(t('prog.granted'), W.num(W.minutes(granted))), stat(t('prog.used'), W.num(W.minutes(used)), 'prog-used')]
      : [stat(t('prog.grantedAmount'), amountOf(unit, granted)), stat(t('prog.usedAmount'), amountOf(unit, used), 'prog-used')];
    var budgetOf = function (n) { return W.num(n) + (unlimited ? '' : ' / ' + W.num(p.budget_packs)); };
    kids.push(h('div', { class: 'stats' }, r ? [
      stat(t('prog.monthIssued', month.period), budgetOf(month.packs_issued), 'prog-month'),
      stat(t('prog.monthLeft'), unlimited ? t('prog.unlimited') : W.num(p.budget_remaining_packs)),
      stat(t('prog.allIssued'), W.num(p.packs_issued), 'prog-issued')
    ].concat(usage) : [
      stat(t('prog.issued'), budgetOf(p.packs_issued), 'prog-issued'),
      stat(t('prog.budgetLeft'), unlimited ? t('prog.unlimited') : W.num(p.budget_remaining_packs))
    ].concat(usage)));
    if (!unlimited) {
      var spent = (r ? month.packs_issued : p.packs_issued) / p.budget_packs;
      kids.push(h('p', { class: 'small' }, [t('prog.budgetUsed', Math.round(spent * 100))]), W.bar(spent, t('prog.budgetUsed', Math.round(spent * 100))));
    }
    if (granted) {
      var drawn = used / granted, key = secs ? 'prog.minutesUsed' : 'prog.amountUsed';
      kids.push(h('p', { class: 'small' }, [t(key, Math.round(drawn * 100))]), W.bar(drawn, t(key, Math.round(drawn * 100))));
    }
    fill($('programme-view'), kids);
  }

  // ---- issuances ----

  function randomKey() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  }

  async function issue() {
    var programme = $('issue-programme').value.trim();
    var target = $('issue-target').value.trim();
    var kind = document.querySelector('input[name="issue-kind"]:checked').value;
    var body = kind === 'company' ? { company_id: target } : { vessel_imo: target };
    // A retry of the same request after a lost answer reuses its key, so
    // the API returns the same issuance instead of starting a second one.
    var sig = programme + '|' + JSON.stringify(body);
    if (!issuance.pending || issuance.pending.sig !== sig) issuance.pending = { sig: sig, key: randomKey() };
    stopPolling();
    var iss = await W.api('/v1/programmes/' + enc(programme) + '/issuances', {
      method: 'POST', body: body, headers: { 'Idempotency-Key': issuance.pending.key }
    });
    issuance.pending = null;
    renderIssuance(iss);
    if (iss.status !== 'done') poll(iss.id);
  }

  function stopPolling() { clearTimeout(issuance.timer); issuance.timer = 0; }

  function poll(id) {
    issuance.timer = setTimeout(async function () {
      try {
        var iss = await W.api('/v1/issuances/' + enc(id));
        renderIssuance(iss);
        if (iss.status !== 'done') poll(id);
      } catch (e) {
        if (e.status === 0 || e.status >= 500 || e.status === 429) poll(id); else fail(e);
      }
    }, POLL_MS);
  }

  function renderIssuance(iss) {
    issuance.last = iss;
    W.show('issue-view', true);
    var processed = iss.issued + iss.skipped + iss.failed;
    var done = iss.status === 'done';
    $('issue-heading').textContent = t('issue.heading', iss.id);
    $('issue-status').textContent = done ? t('issue.done') : t('issue.running');
    $('issue-status').className = 'badge ' + (done ? 'done' : 'running');
    var fraction = iss.total ? processed / iss.total : (done ? 1 : 0);
    var b = W.bar(fraction, t('issue.progress', processed, iss.total));
    b.classList.add('tall');
    b.id = 'issue-progressbar';
    fill($('issue-bar'), [h('p', { class: 'small' }, [t('issue.progress', W.num(processed), W.num(iss.total))]), b]);
    fill($('issue-stats'), [
      stat(t('issue.total'), W.num(iss.total), 'issue-total'), stat(t('issue.issued'), W.num(iss.issued), 'issue-issued'),
      stat(t('issue.skipped'), W.num(iss.skipped), 'issue-skipped'), stat(t('issue.failed'), W.num(iss.failed), 'issue-failed')
    ]);
    // Failures by reason, each with the seafarers it hit behind a toggle.
    var byReason = {};
    (iss.failures || []).forEach(function (f) { (byReason[f.reason] = byReason[f.reason] || []).push(f.seafarer_id); });
    fill($('issue-failures'), Object.keys(byReason).map(function (reason) {
      var ids = byReason[reason];
      return h('details', { class: 'failure' }, [
        h('summary', {}, [t('issue.failedFor', t('reason.' + reason) || reason, W.num(ids.length))]),
        h('p', { class: 'mono wrap small' }, [ids.join(', ')])
      ]);
    }).concat(iss.failed > (iss.failures || []).length
      ? [h('p', { class: 'muted small' }, [t('issue.firstFailures', W.num((iss.failures || []).length), W.num(iss.failed))])] : []));
  }

  function targetLabel() {
    var kind = document.querySelector('input[name="issue-kind"]:checked').value;
    var label = $('issue-target-label');
    label.setAttribute('data-i18n', kind === 'company' ? 'companyId' : 'issue.vesselImo');
    label.textContent = t(label.getAttribute('data-i18n'));
  }

  // ---- statements ----

  function statementURL() {
    var kind = isUnion() ? $('st-kind').value : 'company';
    var id = isUnion() ? $('st-id').value.trim() : me.company_id;
    return '/v1/statements?period=' + enc($('st-period').value) + '&payer=' + enc(kind + ':' + id);
  }

  function money(m) {
    if (m === null || m === undefined) return '–';
    if (typeof m === 'number') return W.num(m);
    if (typeof m !== 'object' || m.minor === undefined) return String(m);
    try {
      return new Intl.NumberFormat(W.lang(), { style: 'currency', currency: m.currency || 'CNY' }).format(m.minor / 100);
    } catch (e) { return (m.minor / 100).toFixed(2) + ' ' + (m.currency || ''); }
  }

  function cell(key, v) {
    if (v && typeof v === 'object' && v.minor !== undefined) return money(v);
    if (typeof v === 'number' && /_seconds$/.test(key)) return W.num(W.minutes(v));
    if (typeof v === 'number') return W.num(v);
    if (v && typeof v === 'object') return JSON.stringify(v);
    return v === undefined || v === null || v === '' ? '–' : String(v);
  }

  // lineColumns names the statement line fields the console knows.
  var lineColumns = {
    seafarer_id: 'col.seafarer', seafarer_name: 'col.name', company_id: 'companyId', company_name: 'st.company', calls: 'st.calls', billable_seconds: 'st.billable', covered_seconds: 'st.covered',
    overage_seconds: 'st.overage', overage_amount: 'st.overageAmount', welfare_cost: 'st.welfare', call_time: 'st.when',
    visited_country: 'st.country', msisdn: 'col.phone', adjusts_period: 'st.adjusts'
  };

  async function showStatement() {
    renderStatement(await W.api(statementURL()));
  }

  function renderStatement(s) {
    shown.statement = s;
    var totals = s.totals || s;
    var lines = s.lines || [];
    // Lines of one statement may differ in their fields (figures, calls,
    // adjustments): the table has a column for every field any line has.
    var keys = [];
    lines.forEach(function (l) { Object.keys(l).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); }); });
    fill($('statement-view'), [
      h('div', { class: 'row' }, [
        h('h3', { id: 'st-heading' }, [[s.payer_name, s.payer, s.period].filter(Boolean).join(' · ')]),
        s.status ? h('span', { class: 'badge ' + (s.status === 'closed' ? 'done' : 'running') }, [t('st.status.' + s.status) || s.status]) : null
      ]),
      h('div', { class: 'stats' }, [
        stat(t('st.calls'), cell('calls', totals.calls), 'st-calls'), stat(t('st.billable'), cell('billable_seconds', totals.billable_seconds)),
        stat(t('st.covered'), cell('covered_seconds', totals.covered_seconds)), stat(t('st.overage'), cell('overage_seconds', totals.overage_seconds)),
        stat(t('st.overageAmount'), money(totals.overage_amount), 'st-overage-amount'), stat(t('st.welfare'), money(totals.welfare_cost), 'st-welfare')
      ]),
      h('h3', {}, [t('st.lines')]),
      lines.length ? h('div', { class: 'scroll' }, [h('table', { id: 'st-lines' }, [
        h('thead', {}, [h('tr', {}, keys.map(function (k) {
          return h('th', { class: /seconds|amount|cost|^calls$/.test(k) ? 'num' : '' }, [t(lineColumns[k]) || k.replace(/_seconds$/, ' (min)').replace(/_/g, ' ')]);
        }))]),
        h('tbody', {}, lines.map(function (l) {
          return h('tr', {}, keys.map(function (k) {
            var v = l[k];
            if (k === 'call_time' && v) v = W.dateTime(v);
            if (k === 'visited_country' && v) v = W.country(v);
            return h('td', { class: typeof l[k] === 'number' || (l[k] && l[k].minor !== undefined) ? 'num' : (/_id$/.test(k) ? 'mono' : '') }, [cell(k, v)]);
          }));
        }))
      ])]) : h('p', { class: 'muted' }, [t('st.noLines')])
    ]);
  }

  async function downloadStatement() {
    var res = await W.api(statementURL(), { raw: true, headers: { Accept: 'text/csv' } });
    var payer = isUnion() ? $('st-kind').value + '-' + $('st-id').value.trim() : 'company-' + me.company_id;
    W.download('statement-' + $('st-period').value + '-' + payer + '.csv', await res.blob());
  }

  // ---- wiring ----

  function onSubmit(formId, buttonSelector, fn) {
    $(formId).addEventListener('submit', function (ev) {
      ev.preventDefault();
      busy($(formId).querySelector(buttonSelector), fn);
    });
  }

  function start() {
    W.chrome(function () { showSignIn(''); });
    W.takeLinkToken();
    W.translate(document);
    W.onLang(function () {
      renderWho(); renderCrew(); renderUpload();
      if (issuance.last) renderIssuance(issuance.last);
      if (shown.programme) renderProgramme(shown.programme);
      if (shown.statement) renderStatement(shown.statement);
      targetLabel();
      programmeKind();
      if (W.unionConsole) W.unionConsole.redraw();
      if (W.auditConsole) W.auditConsole.redraw();
    });
    $('upload-columns').textContent = COLUMNS.join(', ');
    var today = new Date();
    $('prog-starts').value = dateInput(today);
    $('prog-ends').value = dateInput(new Date(today.getTime() + 365 * 86400000));
    $('st-period').value = dateInput(today).slice(0, 7);

    $('signin-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      W.setToken($('token').value);
      $('token').value = '';
      enter();
    });
    var tabs = document.querySelectorAll('.tab');
    for (var i = 0; i < tabs.length; i++) {
      tabs[i].addEventListener('click', function (ev) { select(ev.currentTarget.id.slice(4)); });
    }
    onSubmit('crew-form', 'button[type=submit]', function () { return loadCrew(false); });
    $('crew-more').addEventListener('click', function () { busy($('crew-more'), function () { return loadCrew(true); }); });
    $('crew-vessel-off').addEventListener('click', function () { busy($('crew-vessel-off'), function () { return signVessel(true); }); });
    $('crew-vessel-on').addEventListener('click', function () { busy($('crew-vessel-on'), function () { return signVessel(false); }); });
    onSubmit('upload-form', 'button[type=submit]', sendCrewList);
    $('upload-template').addEventListener('click', function () {
      W.download('crew-template.csv', new Blob(['\uFEFF' + csvLine(COLUMNS)], { type: 'text/csv' }));
    });
    $('upload-failed').addEventListener('click', function () {
      W.download('failed-rows-' + upload.name.replace(/\.csv$/i, '') + '.csv', new Blob([failedRowsCSV()], { type: 'text/csv' }));
    });
    onSubmit('programme-form', 'button[type=submit]', createProgramme);
    var radios = document.querySelectorAll('input[name="prog-kind"], input[name="prog-audience"]');
    for (i = 0; i < radios.length; i++) radios[i].addEventListener('change', programmeKind);
    $('prog-unit').addEventListener('change', programmeUnit);
    programmeKind();
    onSubmit('programme-lookup', 'button[type=submit]', showProgramme);
    onSubmit('issue-form', 'button[type=submit]', issue);
    var kinds = document.querySelectorAll('input[name="issue-kind"]');
    for (i = 0; i < kinds.length; i++) kinds[i].addEventListener('change', targetLabel);
    onSubmit('statement-form', 'button[type=submit]', showStatement);
    $('st-csv').addEventListener('click', function () {
      if (!$('statement-form').reportValidity()) return;
      busy($('st-csv'), downloadStatement);
    });
    // What console-union.js (union staff's overview and operations) uses.
    W.console = { say: say, fail: fail, busy: busy, stat: stat, fill: fill, select: select, onSubmit: onSubmit, audience: audience, nameCompanies: nameCompanies };
    if (W.token()) enter(); else showSignIn('');
  }

  start();
})();
