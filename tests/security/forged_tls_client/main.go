// Command forged_tls_client sends one HTTPS request presenting a client certificate with a
// private key that need not belong to it: what someone holding only a certificate (which is
// public: every handshake shows it) can try. Go's crypto/tls signs the handshake with whatever
// key it is given, while OpenSSL-based clients such as curl, and Deno, refuse a certificate
// and key that do not match before connecting; so the attack needs this client.
//
//	forged_tls_client HOST:PORT CERT.pem KEY.pem METHOD PATH
//
// It prints the server's answer as it came (status line, headers, body), or "error: ..." when
// the handshake or the exchange failed, and exits 0 either way: the caller judges the answer.
// The server's own certificate is not verified; the attacker does not care whom it talks to.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
)

func main() {
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: forged_tls_client HOST:PORT CERT.pem KEY.pem METHOD PATH")
		os.Exit(2)
	}
	addr, certFile, keyFile, method, path := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	cert := pemBlock(certFile, "CERTIFICATE")
	key, err := x509.ParsePKCS8PrivateKey(pemBlock(keyFile, "PRIVATE KEY"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", keyFile, err)
		os.Exit(2)
	}
	// A tls.Certificate built by hand, not by tls.X509KeyPair: nothing checks that the key is
	// the certificate's.
	conn, err := tls.Dial("tcp", addr, &tls.Config{
		InsecureSkipVerify: true,
		Certificates:       []tls.Certificate{{Certificate: [][]byte{cert}, PrivateKey: key}},
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		method, path, addr)
	// In TLS 1.3 the server judges the client's certificate after the handshake: a refusal
	// shows up here, as an error instead of an answer.
	answer, err := io.ReadAll(conn)
	fmt.Print(string(answer))
	if err != nil {
		fmt.Println("error:", err)
	}
}

func pemBlock(file, kind string) []byte {
	text, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	block, _ := pem.Decode(text)
	if block == nil || block.Type != kind {
		fmt.Fprintf(os.Stderr, "%s: no %s PEM block\n", file, kind)
		os.Exit(2)
	}
	return block.Bytes
}
