package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/token"
)

// newTokenCmd groups the offline token tools: nothing here talks to the API.
func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make signing keys and mint bearer tokens (offline)",
	}
	cmd.AddCommand(newTokenMintCmd(), newTokenKeygenCmd())
	return cmd
}

func newTokenMintCmd() *cobra.Command {
	var (
		keyPath, kid string
		claims       token.Claims
	)
	cmd := &cobra.Command{
		Use:   "mint --key FILE.pem --iss ISS --sub SUB --role ROLE [--company-id ID] [--ttl 1h]",
		Short: "Sign a bearer token with a private key file and print it",
		Long: `Sign a bearer token with a private key file and print it.

The algorithm follows from the key (Ed25519 → EdDSA, P-256 → ES256,
RSA → RS256). --kid must name the key as the server's JWKS does; without it
the key's RFC 7638 thumbprint is used, which is also what "token keygen"
uses when it is given no --kid.`,
		Example: `  wuyouctl token mint --key signing.pem --kid k1 --iss https://auth.example --sub union-1 --role union
  wuyouctl token mint --key signing.pem --iss https://auth.example --sub staff-7 --role company --company-id co-42 --ttl 15m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := token.LoadSigningKey(keyPath, kid)
			if err != nil {
				return err
			}
			token, err := key.Mint(claims, time.Now().UTC())
			if err != nil {
				return mintError(err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), token)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", "", "PEM file with the private signing key (PKCS#8, SEC 1 or PKCS#1)")
	f.StringVar(&kid, "kid", "", "key id written in the token header (default: the key's thumbprint)")
	f.StringVar(&claims.Issuer, "iss", "", "issuer (iss); must equal the server's WUYOU_JWT_ISSUER")
	f.StringVar(&claims.Audience, "aud", "wuyou", "audience (aud); must equal the server's WUYOU_JWT_AUDIENCE")
	f.StringVar(&claims.Subject, "sub", "", "subject (sub): the seafarer id for the seafarer role")
	f.StringVar(&claims.Role, "role", "", "role: seafarer, company, union or carrier")
	f.StringVar(&claims.CompanyID, "company-id", "", "company id (company_id), required for the company role")
	f.DurationVar(&claims.TTL, "ttl", time.Hour, "lifetime of the token")
	for _, name := range []string{"key", "iss", "sub", "role"} {
		_ = cmd.MarkFlagRequired(name) // cannot fail: the flags exist
	}
	return cmd
}

// mintError names the flags behind the claims Mint refused, so the operator
// sees "--company-id: required" rather than the claim's name.
func mintError(err error) error {
	var e *wuyou.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return err
	}
	flagOf := map[string]string{"iss": "iss", "aud": "aud", "sub": "sub", "role": "role", "company_id": "company-id", "ttl": "ttl"}
	problems := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		name := f.Field
		if flag, ok := flagOf[name]; ok {
			name = "--" + flag
		}
		problems = append(problems, name+": "+f.Message)
	}
	return fmt.Errorf("cannot mint: %s", strings.Join(problems, "; "))
}

func newTokenKeygenCmd() *cobra.Command {
	var (
		alg, kid, keyPath, jwksPath string
		force                       bool
	)
	cmd := &cobra.Command{
		Use:   "keygen --out-key FILE.pem --out-jwks FILE.json [--alg EdDSA] [--kid KID]",
		Short: "Make a signing key and the JWKS that publishes its public half",
		Long: `Make a signing key and the JWKS that publishes its public half.

The private key is written as PKCS#8 PEM, readable by its owner only; the
JWKS is the file the server's WUYOU_JWT_JWKS names. Existing files are not
overwritten unless --force is given.`,
		Example: `  wuyouctl token keygen --alg EdDSA --kid k1 --out-key signing.pem --out-jwks jwks.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := token.GenerateSigningKey(alg)
			if err != nil {
				return err
			}
			if kid != "" {
				key.KID = kid
			}
			privatePEM, err := key.PrivatePEM()
			if err != nil {
				return err
			}
			jwks, err := token.JWKS(key)
			if err != nil {
				return err
			}
			if !force {
				// Check both before writing either, so a refusal leaves nothing half done.
				for _, path := range []string{keyPath, jwksPath} {
					if _, err := os.Stat(path); err == nil {
						return fmt.Errorf("%s already exists (use --force to overwrite)", path)
					} else if !errors.Is(err, fs.ErrNotExist) {
						return err
					}
				}
			}
			if err := writeFile(keyPath, privatePEM, 0o600, force); err != nil {
				return err
			}
			if err := writeFile(jwksPath, jwks, 0o644, force); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s key %q to %s and its JWKS to %s\n", key.Alg, key.KID, keyPath, jwksPath)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&alg, "alg", token.AlgEdDSA, "algorithm: EdDSA (Ed25519), ES256 or RS256")
	f.StringVar(&kid, "kid", "", "key id (default: the key's RFC 7638 thumbprint)")
	f.StringVar(&keyPath, "out-key", "", "where to write the private key (PEM)")
	f.StringVar(&jwksPath, "out-jwks", "", "where to write the public JWKS (JSON)")
	f.BoolVar(&force, "force", false, "overwrite existing files")
	for _, name := range []string{"out-key", "out-jwks"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// writeFile writes data to path with perm. Without force an existing file is
// an error; with it the file is replaced and its permissions reset to perm.
func writeFile(path string, data []byte, perm fs.FileMode, force bool) error {
	flag := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return err
	}
	if force {
		// O_TRUNC keeps the old mode; a private key must not stay world-readable.
		if err := f.Chmod(perm); err != nil {
			f.Close()
			return err
		}
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
