// Wuyou console, the audit trail (CONTRACT §7.5): who did what. Union staff
// see every staff write; a company sees what its own people did (the API
// decides). Filters by actor, resource and days, newest first, a page at a
// time. console.js calls W.auditConsole.enter/reset/redraw and lends its
// helpers as W.console. Every value is set as text (W.h), never as HTML:
// summaries hold whatever names people typed.
W.auditConsole = (function () {
  'use strict';
  var t = W.t, $ = W.$, h = W.h;
  var wired = false;
  var state = { items: [], cursor: '', query: null, loaded: false };

  W.addStrings({
    en: {
      'tab.audit': 'Audit trail', 'au.title': 'Who did what',
      'au.help': 'Every change made with a staff token, newest first. Nothing here can be changed or deleted.',
      'au.actor': 'Person (token subject)', 'au.resource': 'Resource (e.g. seafarers/sf_…)', 'au.from': 'From day', 'au.to': 'To day (inclusive)',
      'au.at': 'When', 'au.who': 'Who', 'au.action': 'Action', 'au.what': 'Resource', 'au.summary': 'Change', 'au.request': 'Request ID',
      'au.empty': 'No records match.'
    },
    'zh-CN': {
      'tab.audit': '操作记录', 'au.title': '谁做了什么',
      'au.help': '工作人员令牌所做的每一项更改，最新的在前。记录不能修改或删除。',
      'au.actor': '操作人（令牌主体）', 'au.resource': '对象（如 seafarers/sf_…）', 'au.from': '开始日期', 'au.to': '结束日期（含）',
      'au.at': '时间', 'au.who': '操作人', 'au.action': '操作', 'au.what': '对象', 'au.summary': '更改', 'au.request': '请求 ID',
      'au.empty': '没有符合条件的记录。'
    }
  });

  function C() { return W.console; } // say, fail, busy, fill, onSubmit

  // query reads the filters: days as local midnights, "to" inclusive.
  function query() {
    var q = new URLSearchParams({ limit: '100' });
    var actor = $('au-actor').value.trim(), resource = $('au-resource').value.trim();
    if (actor) q.set('actor', actor);
    if (resource) q.set('resource', resource);
    if ($('au-from').value) q.set('from', new Date($('au-from').value + 'T00:00:00').toISOString());
    if ($('au-to').value) {
      var end = new Date($('au-to').value + 'T00:00:00');
      end.setDate(end.getDate() + 1);
      q.set('to', end.toISOString());
    }
    return q;
  }

  async function load(more) {
    if (!more) state.query = query();
    var q = new URLSearchParams(state.query);
    if (more && state.cursor) q.set('cursor', state.cursor);
    try {
      var page = await W.api('/v1/audit?' + q);
      state.items = more ? state.items.concat(page.items || []) : (page.items || []);
      state.cursor = page.next_cursor || '';
      state.loaded = true;
      render();
    } catch (e) { C().fail(e); }
  }

  function who(actor) {
    var a = actor || {};
    return [a.sub, a.role, a.company_id].filter(Boolean).join(' · ');
  }

  function render() {
    if (!state.loaded) return;
    var rows = state.items.map(function (r) {
      return h('tr', { 'data-audit': r.id }, [
        h('td', { 'data-label': t('au.at') }, [W.dateTime(r.at)]),
        h('td', { 'data-label': t('au.who') }, [who(r.actor)]),
        h('td', { class: 'mono', 'data-label': t('au.action') }, [r.action]),
        h('td', { class: 'mono', 'data-label': t('au.what') }, [r.resource]),
        h('td', { 'data-label': t('au.summary') }, [r.summary]),
        h('td', { class: 'mono', 'data-label': t('au.request') }, [r.request_id])
      ]);
    });
    if (!rows.length) rows = [h('tr', {}, [h('td', { colspan: '6', class: 'muted' }, [t('au.empty')])])];
    C().fill($('au-rows'), rows);
    W.show('au-more', !!state.cursor);
  }

  function wire() {
    C().onSubmit('audit-form', 'button[type=submit]', function () { return load(false); });
    $('au-more').addEventListener('click', function () { C().busy($('au-more'), function () { return load(true); }); });
  }

  function enter(me) {
    if (!me || (me.role !== 'union' && me.role !== 'company')) return;
    if (!wired) { wire(); wired = true; }
    load(false);
  }

  function reset() {
    state = { items: [], cursor: '', query: null, loaded: false };
    ['au-actor', 'au-resource', 'au-from', 'au-to'].forEach(function (id) { $(id).value = ''; });
    W.clear($('au-rows'));
    W.show('au-more', false);
  }

  return { enter: enter, reset: reset, redraw: render };
})();
