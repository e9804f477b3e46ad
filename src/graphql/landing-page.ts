// What a browser gets at GET /graphql: in development Apollo's landing page (Sandbox, embedded from
// Apollo's CDN) with a way out when the CDN cannot load, in production nothing.
import type { ApolloServerPlugin, GraphQLServerListener, LandingPage } from "@apollo/server";
import { ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { ApolloServerPluginLandingPageLocalDefault } from "@apollo/server/plugin/landingPage/default";

/**
 * The landing page plugin: none in production; in development Apollo's local default, embedding
 * Sandbox without cookies. Apollo's page loads Sandbox from its CDN, and offline it only says
 * "Apollo Sandbox cannot be loaded; it appears that you might be offline."; with `explorerPath`
 * (where this server serves GraphiQL itself) the page also links that explorer.
 */
export function landingPagePlugin(isProduction: boolean, explorerPath?: string): ApolloServerPlugin {
  if (isProduction) return ApolloServerPluginLandingPageDisabled();
  const apollos = ApolloServerPluginLandingPageLocalDefault({ embed: true, includeCookies: false });
  return explorerPath === undefined ? apollos : withExplorerLink(apollos, explorerPath);
}

/**
 * The paragraph added to Apollo's page. It has Apollo's `fallback` class, which fades it in after a
 * second as Apollo's own offline text is: when the CDN loads, Sandbox's frame covers the whole
 * window (and both) before that; when it cannot, both stay visible. A link, no script, so Apollo's
 * page's CSP has nothing to refuse.
 */
export function explorerLinkHtml(explorerPath: string): string {
  const href = escapeHtml(explorerPath);
  return (
    `<div class="fallback"><p>Without Apollo's CDN, explore this API with GraphiQL, which this server ` +
    `serves itself (in development): <a href="${href}">${href}</a></p></div>\n`
  );
}

/** `plugin`'s landing page with {@link explorerLinkHtml} at the end of its body. */
function withExplorerLink(plugin: ApolloServerPlugin, explorerPath: string): ApolloServerPlugin {
  const link = explorerLinkHtml(explorerPath);
  const addLink = (html: string): string => {
    const end = html.lastIndexOf("</body>");
    if (end === -1) throw new Error("Apollo's landing page has no </body> to add the explorer's link before");
    return html.slice(0, end) + link + html.slice(end);
  };
  return {
    async serverWillStart(service): Promise<GraphQLServerListener> {
      const listener = await plugin.serverWillStart?.(service);
      if (!listener?.renderLandingPage) throw new Error("Apollo's landing page plugin rendered no landing page");
      return {
        ...listener,
        async renderLandingPage(): Promise<LandingPage> {
          const page = await listener.renderLandingPage!();
          const { html } = page;
          // Apollo's page is a function: it draws a new CSP nonce for every request.
          return { ...page, html: typeof html === "string" ? addLink(html) : async () => addLink(await html()) };
        },
      };
    },
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
