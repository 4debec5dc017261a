// Wuyou pages, shared part: the token, calls to the /v1 API, the two
// languages and a few DOM helpers. No framework. The token is kept in this
// tab's sessionStorage (or in memory where storage is off) and nowhere else.
'use strict';
var W = (function () {
  var TOKEN_KEY = 'wuyou.token';
  var LANG_KEY = 'wuyou.lang';
  var memoryToken = '';
  var strings = { en: {}, 'zh-CN': {} };
  var langListeners = [];

  function session(key, value) {
    try {
      if (value === undefined) return sessionStorage.getItem(key);
      if (value === null) sessionStorage.removeItem(key);
      else sessionStorage.setItem(key, value);
    } catch (e) { /* storage is off: memory only */ }
    return null;
  }

  function setToken(tok) {
    memoryToken = (tok || '').trim().replace(/^Bearer\s+/i, '');
    session(TOKEN_KEY, memoryToken || null);
  }
  function token() { return memoryToken || session(TOKEN_KEY) || ''; }

  // A token handed over in the link ("/#token=...") is kept for this tab and
  // removed from the address bar and the history at once.
  function takeLinkToken() {
    var m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (!m) return;
    setToken(decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }

  // claims decodes the token's payload without verifying it: the API
  // verifies every request; the page only needs the role and ids.
  function claims(tok) {
    try {
      var p = tok.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      while (p.length % 4) p += '=';
      var bin = atob(p), bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      var c = JSON.parse(new TextDecoder().decode(bytes));
      return c && typeof c === 'object' ? c : null;
    } catch (e) { return null; }
  }

  // signInProblem names what is wrong with a token before it is used, or ''.
  function signInProblem(tok, roles) {
    var c = claims(tok);
    if (!c || !c.role) return t('badToken');
    if (c.exp && c.exp * 1000 < Date.now()) return t('expiredToken');
    if (roles.indexOf(c.role) < 0) return t('wrongRole.' + c.role) || t('wrongRole');
    return '';
  }

  // api calls the API and returns the decoded JSON (or the Response when
  // opts.raw). Failures throw an Error whose message is ready to show, with
  // .status and .problem (the problem+json body) attached.
  async function api(path, opts) {
    opts = opts || {};
    var headers = Object.assign(token() ? { Authorization: 'Bearer ' + token() } : {}, opts.headers || {});
    var body = opts.body;
    if (body !== undefined && typeof body !== 'string' && !(body instanceof Blob)) {
      body = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
    var res;
    try {
      res = await fetch(path, { method: opts.method || 'GET', headers: headers, body: body, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      throw failure(0, null);
    }
    if (res.ok && opts.raw) return res;
    var text = await res.text(), data = null;
    if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
    if (!res.ok) {
      var err = failure(res.status, data);
      err.retryAfter = parseInt(res.headers.get('Retry-After'), 10) || 0; // seconds
      throw err;
    }
    return data;
  }

  function failure(status, problem) {
    var msg;
    switch (status) {
      case 0: msg = t('err.offline'); break;
      case 401: msg = t('err.401'); break;
      case 403: msg = t('err.403'); break;
      case 429: msg = t('err.429'); break;
      case 502: case 503: case 504: msg = t('err.503'); break;
      default:
        msg = (problem && problem.detail) || t('err.other', status);
    }
    var e = new Error(msg);
    e.status = status;
    e.problem = problem;
    return e;
  }

  function pickLang() {
    var saved = null;
    try { saved = localStorage.getItem(LANG_KEY); } catch (e) { saved = null; }
    if (saved && strings[saved]) return saved;
    var prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
    for (var i = 0; i < prefs.length; i++) {
      if (/^zh\b/i.test(prefs[i])) return 'zh-CN';
      if (/^en\b/i.test(prefs[i])) return 'en';
    }
    return 'en';
  }
  var lang = 'en';

  function addStrings(more) {
    Object.keys(more).forEach(function (l) { Object.assign(strings[l], more[l]); });
  }

  // t looks a string up in the current language (English when missing) and
  // fills {0}, {1}, … with the arguments.
  function t(key) {
    var s = strings[lang][key];
    if (s === undefined) s = strings.en[key];
    if (s === undefined) return '';
    var args = arguments;
    return s.replace(/\{(\d)\}/g, function (_, i) { var v = args[+i + 1]; return v === undefined ? '' : String(v); });
  }

  // translate fills every [data-i18n] element's text (and [data-i18n-ph]
  // placeholders) in the current language.
  function translate(root) {
    document.documentElement.lang = lang;
    document.title = t('title');
    var els = (root || document).querySelectorAll('[data-i18n]');
    for (var i = 0; i < els.length; i++) els[i].textContent = t(els[i].getAttribute('data-i18n'));
    els = (root || document).querySelectorAll('[data-i18n-ph]');
    for (i = 0; i < els.length; i++) els[i].placeholder = t(els[i].getAttribute('data-i18n-ph'));
    var sw = $('lang');
    if (sw) {
      sw.lang = lang === 'en' ? 'zh-CN' : 'en';
      sw.setAttribute('aria-label', t('switchLangLabel'));
    }
  }

  function setLang(l) {
    lang = l;
    try { localStorage.setItem(LANG_KEY, l); } catch (e) { /* not remembered */ }
    translate(document);
    langListeners.forEach(function (fn) { fn(); });
  }

  // Formatting, in the page's language and the browser's time zone.
  function num(n) { return new Intl.NumberFormat(lang).format(n); }
  function minutes(seconds) { return Math.floor((seconds || 0) / 60); }
  function date(iso) {
    return new Intl.DateTimeFormat(lang, { year: 'numeric', month: 'short', day: 'numeric' }).format(new Date(iso));
  }
  function dateTime(iso) {
    return new Intl.DateTimeFormat(lang, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));
  }
  function time(iso) {
    return new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));
  }
  function country(code) {
    if (!code) return '–';
    try {
      var name = new Intl.DisplayNames([lang], { type: 'region' }).of(code);
      return name && name !== code ? name : code;
    } catch (e) { return code; }
  }

  function $(id) { return document.getElementById(id); }

  // h builds an element: h('td', {class: 'num'}, ['12']). Text is always set
  // as text, never parsed as HTML.
  function h(tag, props, kids) {
    var el = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      var v = props[k];
      if (v === undefined || v === null || v === false) return;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    });
    (kids || []).forEach(function (kid) {
      if (kid !== null && kid !== undefined) el.appendChild(typeof kid === 'object' ? kid : document.createTextNode(String(kid)));
    });
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  function show(el, on) { (typeof el === 'string' ? $(el) : el).hidden = !on; }

  // bar is a progress bar filled to fraction (0..1). Its width is set
  // through the CSSOM, which the Content-Security-Policy allows.
  function bar(fraction, label) {
    var pct = Math.max(0, Math.min(100, Math.round((fraction || 0) * 100)));
    var fill = h('span', { class: 'fill' });
    fill.style.width = pct + '%';
    return h('span', { class: 'meter', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(pct), 'aria-label': label || '' }, [fill]);
  }

  function download(name, blob) {
    var url = URL.createObjectURL(blob);
    var a = h('a', { href: url, download: name, hidden: true });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 30000);
  }

  // chrome wires the header: the language switch and sign-out.
  function chrome(onSignOut) {
    lang = pickLang();
    $('lang').addEventListener('click', function () { setLang(lang === 'en' ? 'zh-CN' : 'en'); });
    $('signout').addEventListener('click', function () { setToken(''); onSignOut(); });
  }

  addStrings({
    en: {
      switchLang: '中文', switchLangLabel: 'Switch to Chinese', signOut: 'Sign out', loading: 'Loading…',
      signIn: 'Sign in', signInTitle: 'Sign in', tokenLabel: 'Token', refresh: 'Refresh',
      badToken: 'That is not a valid token. Copy it again, whole.',
      expiredToken: 'This token has expired. Get a new one from your union app.',
      'err.offline': 'No connection. Check your signal and try again.',
      'err.401': 'Your sign-in has expired or is not valid. Sign in again.',
      'err.403': 'Your role may not do this.',
      'err.429': 'Too many requests. Wait a moment and try again.',
      'err.503': 'The service is busy or down for a moment. Try again shortly.',
      'err.other': 'Something went wrong (HTTP {0}).'
    },
    'zh-CN': {
      switchLang: 'English', switchLangLabel: '切换到英文', signOut: '退出', loading: '正在加载…',
      signIn: '登录', signInTitle: '登录', tokenLabel: '令牌', refresh: '刷新',
      badToken: '令牌无效，请重新完整复制。',
      expiredToken: '令牌已过期，请在工会应用中重新获取。',
      'err.offline': '无法连接网络，请检查信号后重试。',
      'err.401': '登录已过期或无效，请重新登录。',
      'err.403': '您的角色无权进行此操作。',
      'err.429': '请求过于频繁，请稍后再试。',
      'err.503': '服务暂时繁忙或不可用，请稍后再试。',
      'err.other': '出错了（HTTP {0}）。'
    }
  });

  return {
    setToken: setToken, token: token, takeLinkToken: takeLinkToken, claims: claims, signInProblem: signInProblem,
    api: api, addStrings: addStrings, t: t, translate: translate, lang: function () { return lang; },
    onLang: function (fn) { langListeners.push(fn); },
    num: num, minutes: minutes, date: date, dateTime: dateTime, time: time, country: country,
    $: $, h: h, clear: clear, show: show, bar: bar, download: download, chrome: chrome
  };
})();
