// Wuyou seafarer page: minutes left, packs and their expiry, this month's
// calls. Two API requests per view, sent together: GET /v1/me/allowance and
// GET /v1/seafarers/{id}/usage.
(function () {
  'use strict';
  var t = W.t, $ = W.$, h = W.h;
  var WEEK = 7 * 24 * 3600 * 1000;
  var CALLS_PER_PAGE = 20;
  var state = { allowance: null, calls: [], cursor: '', from: '' };

  W.addStrings({
    en: {
      title: 'Wuyou · free call minutes at sea',
      otpHelp: 'Enter your mobile number. We send you a code by SMS.',
      msisdnLabel: 'Mobile number', msisdnPlaceholder: '+86 138 0000 0001', sendCode: 'Send code',
      codeLabel: 'Code from the SMS', otherNumber: 'Use another number or send a new code',
      tokenInstead: 'Have a token from your union app?',
      codeSent: 'If {0} is enrolled with Wuyou, a code is on its way by SMS. It works for {1} minutes.',
      badNumber: 'Enter the number with its country code, like +86 138 0000 0001.',
      badCode: 'The code is the 6 digits in the SMS.',
      wrongCode: 'That code is wrong or has expired. Check the SMS, or ask for a new code.',
      tooMany: 'Too many tries. Try again in {0} min.',
      smsLangTitle: 'Texts from Wuyou', smsLangLabel: 'Language of the texts',
      smsLangHelp: 'The language of the SMS Wuyou sends you: low balance, new packs, sign-in codes.',
      smsLangSaved: 'Saved: texts come in {0} from now on.',
      'wrongRole.company': 'This page is for seafarers. Company staff use the console at /console.',
      'wrongRole.union': 'This page is for seafarers. Union staff use the console at /console.',
      minutesLeft: 'Free minutes left', ofActive: 'of {0} min in your active packs',
      thisMonth: 'This month', usedMinutes: 'Minutes used', overageMinutes: 'Overage minutes',
      overageHelp: 'Overage is billed by your carrier at the roaming tariff.',
      packs: 'Your packs', pack: 'Pack of {0} min', packLeft: '{0} of {1} min left',
      expires: 'Expires {0}', expired: 'Expired {0}', startsOn: 'Starts {0}', daysLeft: 'in {0} days', today: 'today',
      'status.active': 'Active', 'status.pending': 'Not yet valid', 'status.expired': 'Expired',
      'status.voided': 'Withdrawn', 'status.exhausted': 'Used up', noPacks: 'You have no packs yet.',
      calls: 'Calls this month', call: 'Call', min: 'Min', paidBy: 'Paid by',
      covered: 'Free', overage: 'Overage', split: '{0} free + {1} overage', notCharged: 'Not metered',
      noCalls: 'No calls abroad this month.', moreCalls: 'More calls', asOf: 'Updated {0}.',
      'warn.none': 'You have no active pack: calls abroad are billed at the roaming tariff.',
      'warn.exhausted': 'Your free minutes are used up: calls abroad are now billed at the roaming tariff.',
      'warn.low': 'Only {0} free minutes left.',
      'warn.expiring': '{0} min expire {1} ({2}). Use them before then.',
      offline: 'No connection: the minutes shown are as of {0}. They update when you are back online.',
      otherUnits: 'Data and SMS', 'left.bytes': 'Data left', 'left.sms': 'SMS left', ofUnit: 'of {0}',
      'pack.bytes': 'Data pack of {0}', 'pack.sms': 'Pack of {0} SMS', 'amount.sms': '{0} SMS',
      'warn.none.bytes': 'Your data is used up: data abroad is now billed at the roaming tariff.',
      'warn.none.sms': 'Your free SMS are used up: SMS abroad are now billed at the roaming tariff.',
      inCall: 'In a call: {0} min reserved', inUse: 'In use: {0} reserved'
    },
    'zh-CN': {
      title: '出海无忧 · 海上免费通话分钟',
      otpHelp: '请输入您的手机号码，我们将通过短信发送验证码。',
      msisdnLabel: '手机号码', msisdnPlaceholder: '+86 138 0000 0001', sendCode: '发送验证码',
      codeLabel: '短信验证码', otherNumber: '换一个号码或重新发送验证码',
      tokenInstead: '有工会应用给的令牌？',
      codeSent: '如果 {0} 已在无忧登记，验证码将通过短信发送，{1} 分钟内有效。',
      badNumber: '请输入带国家代码的号码，例如 +86 138 0000 0001。',
      badCode: '验证码是短信中的 6 位数字。',
      wrongCode: '验证码错误或已过期。请查看短信，或重新获取验证码。',
      tooMany: '尝试次数过多，请 {0} 分钟后再试。',
      smsLangTitle: '无忧短信', smsLangLabel: '短信语言',
      smsLangHelp: '无忧发给您的短信所用的语言：余额不足、新套餐、登录验证码。',
      smsLangSaved: '已保存：今后短信将使用{0}。',
      'wrongRole.company': '本页面供船员使用。公司工作人员请使用 /console 控制台。',
      'wrongRole.union': '本页面供船员使用。工会工作人员请使用 /console 控制台。',
      minutesLeft: '剩余免费分钟', ofActive: '有效套餐共 {0} 分钟',
      thisMonth: '本月', usedMinutes: '已用分钟', overageMinutes: '超出分钟',
      overageHelp: '超出部分由运营商按漫游资费收费。',
      packs: '我的套餐', pack: '{0} 分钟套餐', packLeft: '剩余 {0} / {1} 分钟',
      expires: '{0} 到期', expired: '已于 {0} 到期', startsOn: '{0} 生效', daysLeft: '还有 {0} 天', today: '今天',
      'status.active': '有效', 'status.pending': '未生效', 'status.expired': '已过期',
      'status.voided': '已撤销', 'status.exhausted': '已用完', noPacks: '您还没有套餐。',
      calls: '本月通话', call: '通话', min: '分钟', paidBy: '计费',
      covered: '免费', overage: '超出', split: '免费 {0} + 超出 {1}', notCharged: '不计费',
      noCalls: '本月没有境外通话。', moreCalls: '更多通话', asOf: '更新于 {0}。',
      'warn.none': '您没有有效套餐：境外通话将按漫游资费收费。',
      'warn.exhausted': '免费分钟已用完：境外通话现按漫游资费收费。',
      'warn.low': '免费分钟仅剩 {0} 分钟。',
      'warn.expiring': '{0} 分钟将于 {1}（{2}）到期，请尽快使用。',
      offline: '无法连接网络：显示的是 {0} 的分钟数，恢复联网后自动更新。',
      otherUnits: '流量和短信', 'left.bytes': '剩余流量', 'left.sms': '剩余短信', ofUnit: '共 {0}',
      'pack.bytes': '{0} 流量套餐', 'pack.sms': '{0} 条短信套餐', 'amount.sms': '{0} 条',
      'warn.none.bytes': '免费流量已用完：境外流量现按漫游资费收费。',
      'warn.none.sms': '免费短信已用完：境外短信现按漫游资费收费。',
      inCall: '通话中：已预留 {0} 分钟', inUse: '使用中：已预留 {0}'
    }
  });

  function setStatus(text) {
    $('status').textContent = text || '';
    W.show('status', !!text);
  }

  // Offline: the phone has no connection (the browser says so, or a request
  // could not reach Wuyou). Once the minutes are on screen the message sits
  // just above them and stays at the top of the screen while the seafarer
  // scrolls (style.css: .offline), so it is seen wherever they were looking
  // when the request failed; before that, the page is only the status line.
  // It goes when a load succeeds, and coming back online loads again.
  var offline = false;

  function setOffline(on) {
    offline = on;
    renderOffline();
  }

  function renderOffline() {
    var shown = offline && !!state.allowance;
    $('offline').textContent = shown ? t('offline', W.dateTime(state.allowance.as_of)) : '';
    W.show('offline', shown);
  }

  // failed shows a request's failure: a lost connection as the offline
  // message once minutes are on screen, anything else (or a first load
  // that could not connect) on the status line.
  function failed(e) {
    if (e.status === 0) setOffline(true);
    setStatus(e.status === 0 && state.allowance ? '' : e.message);
  }

  function showSignIn(problem) {
    state.allowance = null;
    W.show('view', false);
    W.show('signout', false);
    W.show('signin', true);
    setStatus('');
    $('signin-error').textContent = problem || '';
    W.show('signin-error', !!problem);
  }

  // Sign-in with a code by SMS (POST /v1/auth/otp, then :verify). The
  // number is written as people write it: spaces and dashes go, 00 is +,
  // and a Chinese mobile number without a country code gets +86.
  var NUMBER_KEY = 'wuyou.msisdn';
  var pendingNumber = '';

  function normaliseNumber(raw) {
    var n = (raw || '').replace(/[\s\-().]/g, '');
    if (/^00\d/.test(n)) n = '+' + n.slice(2);
    if (/^1\d{10}$/.test(n)) n = '+86' + n;
    return n;
  }

  function signInFailed(e) {
    var msg = e.message;
    if (e.status === 429) msg = t('tooMany', Math.max(1, Math.ceil((e.retryAfter || 60) / 60)));
    else if (e.status === 401) msg = t('wrongCode');
    else if (e.status === 400) {
      var field = e.problem && e.problem.errors && e.problem.errors[0] && e.problem.errors[0].field;
      msg = field === 'code' ? t('badCode') : t('badNumber');
    }
    $('signin-error').textContent = msg;
    W.show('signin-error', true);
  }

  function showCodeStep(on) {
    W.show('otp-number-form', !on);
    W.show('otp-code-form', on);
    if (on) $('otp-code').focus();
  }

  async function sendCode(ev) {
    ev.preventDefault();
    W.show('signin-error', false);
    var number = normaliseNumber($('msisdn').value);
    try {
      var res = await W.api('/v1/auth/otp', { method: 'POST', body: { msisdn: number } });
      pendingNumber = number;
      $('msisdn').value = number; // as the service read it
      try { localStorage.setItem(NUMBER_KEY, number); } catch (e) { /* not remembered */ }
      $('otp-sent').textContent = t('codeSent', number, Math.round((res.expires_in || 300) / 60));
      $('otp-code').value = '';
      showCodeStep(true);
    } catch (e) {
      // Asked again too soon: the code already sent still works.
      if (e.status === 429 && number === pendingNumber) showCodeStep(true);
      signInFailed(e);
    }
  }

  async function verifyCode(ev) {
    ev.preventDefault();
    W.show('signin-error', false);
    try {
      var res = await W.api('/v1/auth/otp:verify', { method: 'POST', body: { msisdn: pendingNumber, code: $('otp-code').value.trim() } });
      W.setToken(res.access_token);
      showCodeStep(false);
      load();
    } catch (e) { signInFailed(e); }
  }

  async function load() {
    var problem = W.signInProblem(W.token(), ['seafarer']);
    if (problem) { showSignIn(problem); return; }
    W.show('signin', false);
    W.show('signout', true);
    if (!state.allowance) setStatus(t('loading'));
    var id = W.claims(W.token()).sub;
    var now = new Date();
    state.from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString().replace('.000Z', 'Z');
    try {
      var both = await Promise.all([W.api('/v1/me/allowance'), fetchCalls(id, '')]);
      state.allowance = both[0];
      state.calls = both[1].calls;
      state.cursor = both[1].cursor;
      setStatus('');
      setOffline(false);
      render();
      if ($('sms-lang').disabled) loadSMSLang(id);
    } catch (e) {
      if (e.status === 401) { W.setToken(''); showSignIn(e.message); return; }
      failed(e);
    }
  }

  // The language of the seafarer's texts (their lang, CONTRACT §7.4): read
  // from their record, changed with PATCH /v1/me. Apart from the page's own
  // language, which is the phone's choice.
  async function loadSMSLang(id) {
    try {
      var me = await W.api('/v1/seafarers/' + encodeURIComponent(id));
      $('sms-lang').value = me.lang || 'zh-CN';
      $('sms-lang').disabled = false;
    } catch (e) { /* the card stays disabled; the balance matters more */ }
  }

  async function saveSMSLang() {
    var sel = $('sms-lang');
    sel.disabled = true;
    $('sms-lang-status').textContent = '';
    try {
      var me = await W.api('/v1/me', { method: 'PATCH', body: { lang: sel.value } });
      sel.value = me.lang;
      $('sms-lang-status').textContent = t('smsLangSaved', sel.options[sel.selectedIndex].textContent);
    } catch (e) {
      $('sms-lang-status').textContent = e.message;
    } finally {
      sel.disabled = false;
    }
  }

  async function fetchCalls(id, cursor) {
    var q = '?from=' + encodeURIComponent(state.from) + '&limit=' + CALLS_PER_PAGE + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
    var page = await W.api('/v1/seafarers/' + encodeURIComponent(id) + '/usage' + q);
    var calls = (page.items || []).filter(function (e) { return e.kind === 'debit' && (!e.type || /voice$/.test(e.type)); });
    return { calls: calls, cursor: page.next_cursor || '' };
  }

  async function more() {
    var btn = $('more');
    btn.disabled = true;
    try {
      var next = await fetchCalls(state.allowance.seafarer_id, state.cursor);
      state.calls = state.calls.concat(next.calls);
      state.cursor = next.cursor;
      setOffline(false);
      renderCalls();
    } catch (e) {
      failed(e);
    } finally {
      btn.disabled = false;
    }
  }

  // Units other than seconds (CONTRACT §7.2): data in bytes, SMS by count.
  // Data is shown in MB or GB of 1024, as Chinese carriers count it.
  function bytes(n) {
    var gb = n / 1073741824, mb = n / 1048576;
    if (gb >= 1) return W.num(Math.floor(gb * 10) / 10) + ' GB';
    return W.num(mb >= 10 ? Math.floor(mb) : Math.floor(mb * 10) / 10) + ' MB';
  }
  function amount(unit, n) {
    if (unit === 'bytes') return bytes(n);
    if (unit === 'sms') return t('amount.sms', W.num(n));
    return W.num(W.minutes(n)) + ' ' + t('min');
  }
  // reservedOf is what the carrier's open sessions hold of unit (CONTRACT
  // §7.3): a call in progress. Still in remaining until the call is charged.
  function reservedOf(a, unit) {
    var b = (a.balances || []).filter(function (b) { return b.unit === unit; })[0];
    return (b && b.reserved) || 0;
  }
  function unitOf(g) { return g.unit || 'seconds'; }
  function grantedOf(g) { return unitOf(g) === 'seconds' ? g.granted_seconds : g.granted; }
  function remainingOf(g) { return unitOf(g) === 'seconds' ? g.remaining_seconds : g.remaining; }

  // renderOtherUnits shows a line per unit other than seconds the seafarer
  // holds (the allowance's balances): what is left of the active packs.
  function renderOtherUnits(a) {
    var others = (a.balances || []).filter(function (b) { return b.unit !== 'seconds'; });
    var list = W.clear($('other-units'));
    others.forEach(function (b) {
      list.appendChild(h('div', { 'data-unit': b.unit }, [
        h('dt', {}, [t('left.' + b.unit)]),
        h('dd', { class: b.remaining > 0 ? '' : 'warn-text' }, [amount(b.unit, b.remaining)]),
        h('dd', { class: 'muted small' }, [t('ofUnit', amount(b.unit, b.granted))])
      ].concat(b.reserved > 0 ? [h('dd', { class: 'small in-call' }, [t('inUse', amount(b.unit, b.reserved))])] : [])));
    });
    W.show('other-units-card', others.length > 0);
  }

  function render() {
    var a = state.allowance;
    if (!a) return;
    W.show('view', true);
    var grants = a.grants || [];
    var active = grants.filter(function (g) { return g.status === 'active' && unitOf(g) === 'seconds'; });
    var granted = active.reduce(function (s, g) { return s + g.granted_seconds; }, 0);

    $('remaining').textContent = W.num(a.remaining_minutes);
    $('remaining-note').textContent = active.length ? t('ofActive', W.num(W.minutes(granted))) : '';
    // A held part of a minute is shown as a minute: "0 min reserved" would
    // say there is no call.
    var reserved = reservedOf(a, 'seconds');
    $('in-call').textContent = reserved > 0 ? t('inCall', W.num(Math.ceil(reserved / 60))) : '';
    W.show('in-call', reserved > 0);
    $('used').textContent = W.num(W.minutes(a.used_seconds));
    $('overage').textContent = W.num(W.minutes(a.overage_seconds));
    $('overage').className = a.overage_seconds > 0 ? 'warn-text' : '';
    $('as-of').textContent = t('asOf', W.dateTime(a.as_of));

    renderOtherUnits(a);
    renderWarnings(a, active, granted);
    renderPacks(grants);
    renderCalls();
    renderOffline();
  }

  // Warnings follow the carrier notifications: low below 20% of the active
  // total, and a pack with minutes left that expires within seven days.
  function renderWarnings(a, active, granted) {
    var box = W.clear($('warnings'));
    var add = function (level, text) { box.appendChild(h('p', { class: 'alert ' + level, role: 'alert' }, [text])); };
    if (!active.length) add('danger', t('warn.none'));
    else if (a.remaining_seconds <= 0) add('danger', t('warn.exhausted'));
    else if (a.remaining_seconds * 5 < granted) add('warn', t('warn.low', W.num(a.remaining_minutes)));
    (a.balances || []).forEach(function (b) {
      if (b.unit !== 'seconds' && b.granted > 0 && b.remaining <= 0) add('danger', t('warn.none.' + b.unit));
    });
    var now = Date.now();
    active.forEach(function (g) {
      var left = new Date(g.expires_at).getTime() - now;
      if (g.remaining_seconds > 0 && left < WEEK) {
        add('warn', t('warn.expiring', W.num(W.minutes(g.remaining_seconds)), W.date(g.expires_at), inDays(g.expires_at)));
      }
    });
  }

  function inDays(iso) {
    var days = Math.ceil((new Date(iso).getTime() - Date.now()) / 86400000);
    return days <= 0 ? t('today') : t('daysLeft', days);
  }

  var statusOrder = { active: 0, pending: 1, exhausted: 2, expired: 3, voided: 4 };

  function renderPacks(grants) {
    var list = W.clear($('packs'));
    if (!grants.length) { list.appendChild(h('li', { class: 'muted' }, [t('noPacks')])); return; }
    grants.slice().sort(function (x, y) {
      return (statusOrder[x.status] - statusOrder[y.status]) || (new Date(x.expires_at) - new Date(y.expires_at));
    }).forEach(function (g) {
      var live = g.status === 'active' || g.status === 'pending';
      var when;
      if (g.status === 'pending') when = t('startsOn', W.date(g.effective_at));
      else if (g.status === 'expired') when = t('expired', W.date(g.expires_at));
      else when = t('expires', W.date(g.expires_at)) + (live ? ' · ' + inDays(g.expires_at) : '');
      var unit = unitOf(g), total = grantedOf(g), left = remainingOf(g);
      var soon = g.status === 'active' && left > 0 && new Date(g.expires_at) - Date.now() < WEEK;
      var title = unit === 'seconds' ? t('pack', W.num(W.minutes(total))) : t('pack.' + unit, unit === 'sms' ? W.num(total) : bytes(total));
      var leftText = unit === 'seconds' ? t('packLeft', W.num(W.minutes(left)), W.num(W.minutes(total)))
        : amount(unit, left) + ' / ' + amount(unit, total);
      list.appendChild(h('li', { class: live ? 'pack' : 'pack done', 'data-unit': unit }, [
        h('div', { class: 'row' }, [
          h('strong', {}, [title]),
          h('span', { class: 'badge ' + g.status }, [t('status.' + g.status)])
        ]),
        h('div', {}, [leftText]),
        W.bar(total ? left / total : 0, leftText),
        h('div', { class: soon ? 'warn-text small' : 'muted small' }, [when])
      ]));
    });
  }

  function renderCalls() {
    var body = W.clear($('calls'));
    state.calls.forEach(function (c) {
      var paid, cls;
      if (c.billable_seconds === 0) { paid = t('notCharged'); cls = 'badge'; }
      else if (c.overage_seconds === 0) { paid = t('covered'); cls = 'badge covered'; }
      else if (c.covered_seconds === 0) { paid = t('overage'); cls = 'badge overage'; }
      else { paid = t('split', W.minutes(c.covered_seconds), W.minutes(c.overage_seconds)); cls = 'badge overage'; }
      var at = c.call_time || c.at;
      body.appendChild(h('tr', {}, [
        h('td', {}, [h('span', { class: 'place' }, [W.country(c.visited_country)]), h('time', { datetime: at }, [W.dateTime(at)])]),
        h('td', { class: 'num' }, [W.num(W.minutes(c.billable_seconds))]),
        h('td', {}, [h('span', { class: cls }, [paid])])
      ]));
    });
    W.show('no-calls', !state.calls.length);
    W.show('more', !!state.cursor);
  }

  function start() {
    // Signing out forgets the number too: crews share phones.
    W.chrome(function () {
      try { localStorage.removeItem(NUMBER_KEY); } catch (e) { /* nothing remembered */ }
      $('msisdn').value = '';
      pendingNumber = '';
      $('sms-lang').disabled = true; // read again for whoever signs in next
      $('sms-lang-status').textContent = '';
      showCodeStep(false);
      showSignIn('');
    });
    W.takeLinkToken();
    W.translate(document);
    W.onLang(render);
    $('otp-number-form').addEventListener('submit', sendCode);
    $('otp-code-form').addEventListener('submit', verifyCode);
    $('otp-again').addEventListener('click', function () { W.show('signin-error', false); showCodeStep(false); });
    try { $('msisdn').value = localStorage.getItem(NUMBER_KEY) || ''; } catch (e) { /* nothing remembered */ }
    $('signin-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      W.setToken($('token').value);
      $('token').value = '';
      load();
    });
    $('refresh').addEventListener('click', load);
    $('sms-lang').addEventListener('change', saveSMSLang);
    $('more').addEventListener('click', more);
    window.addEventListener('hashchange', function () { if (/token=/.test(location.hash)) { W.takeLinkToken(); load(); } });
    window.addEventListener('offline', function () { setOffline(true); });
    window.addEventListener('online', function () { if (W.token() && $('signin').hidden) load(); else setOffline(false); });
    offline = navigator.onLine === false;
    if (W.token()) load(); else showSignIn('');
  }

  start();
})();
